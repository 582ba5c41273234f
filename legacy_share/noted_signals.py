"""SIGINT / SIGTERM remembered as well as raised while an output is written (a mixin of Output)."""

import signal
import sys
import threading

__all__ = ["NotedSignals"]


class NotedSignals:
    """Notes the SIGINT / SIGTERM that come while an output is claimed.

    The class using it sets `self._signals = {}`, `self.signalled = []` and
    `self._unraisable_hook = None` in its `__init__`, calls `_note_signals` on entering and
    `_restore_signals` on leaving.
    """

    def _note_signals(self):
        """Wraps the SIGINT / SIGTERM handlers so that a signal is remembered as well as raised.

        Raised inside a `__del__` or weakref callback (TensorFlow and Keras run many), the
        KeyboardInterrupt is swallowed ("Exception ignored in ..."); `raise_if_signalled` then
        raises it again before anything is moved into place.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        for number in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(number)
            if not callable(previous):
                continue  # SIG_IGN / SIG_DFL: nothing is raised, nothing can be swallowed

            def noted(signum, frame, previous=previous):
                self.signalled.append(signum)
                previous(signum, frame)

            self._signals[number] = previous
            signal.signal(number, noted)
        if self._signals:
            self._unraisable_hook = sys.unraisablehook

            def quiet(unraisable, previous=self._unraisable_hook):
                # Swallowed in a finalizer and remembered: no "Exception ignored" traceback.
                if not (isinstance(unraisable.exc_value, KeyboardInterrupt) and self.signalled):
                    previous(unraisable)

            sys.unraisablehook = quiet

    def raise_if_signalled(self):
        """Raises again the first SIGINT / SIGTERM that came during the run (it was swallowed)."""
        if self.signalled:
            number = self.signalled[0]
            self._signals.get(number, signal.default_int_handler)(number, None)
            raise KeyboardInterrupt  # the previous handler did not raise

    def _restore_signals(self):
        """Puts back the handlers `_note_signals` wrapped, and sys.unraisablehook."""
        for number, previous in self._signals.items():
            signal.signal(number, previous)
        self._signals = {}
        if self._unraisable_hook is not None:
            sys.unraisablehook, self._unraisable_hook = self._unraisable_hook, None
