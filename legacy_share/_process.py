"""Process set-up before TensorFlow is imported: which Keras it serves, and its start-up noise.

A leaf module: it imports nothing of legacy_share but `errors`, and TensorFlow only when
`import_tensorflow` / `prepare_tensorflow` are called.
TensorFlow >= 2.16 serves `tf.compat.v1.nn.rnn_cell` (and `tf.keras` = tf_keras) only when
TF_USE_LEGACY_KERAS=1 is set before it is imported, and Keras 3 only when it is not: one
process holds one of them, chosen at TensorFlow's import.
"""

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import warnings

from legacy_share.errors import ArgumentError, KerasBackendError, LegacyKerasError

__all__ = ["LEGACY_KERAS_SWITCH", "legacy_keras_switched_on", "tensorflow_minor",
           "prefer_legacy_keras", "release_legacy_keras",
           "switch_set_before_tensorflow", "supports_keras3",
           "keras_in_use", "use_keras", "arrange_keras", "quiet_tensorflow",
           "import_tensorflow", "prepare_tensorflow", "deferred_signals",
           "keras_config_untouched", "keras_backend_failure", "run_with_legacy_keras"]

LEGACY_KERAS_SWITCH = "TF_USE_LEGACY_KERAS"
# Marks (also for child processes, which inherit the environment) that the switch above was set
# by `import legacy_share`, not by the user, so that `legacy_share.keras` may take it back.
_SET_BY_PACKAGE = "LEGACY_SHARE_SET_TF_USE_LEGACY_KERAS"
_TRUE = ("1", "true", "True")


def legacy_keras_switched_on():
    """True when TF_USE_LEGACY_KERAS holds a value TensorFlow reads as on ("1", "true", "True")."""
    return os.environ.get(LEGACY_KERAS_SWITCH) in _TRUE


_tensorflow_came_first = False  # pylint: disable=invalid-name


def prefer_legacy_keras():
    """Sets TF_USE_LEGACY_KERAS=1 when it is unset, remembering that the package set it."""
    global _tensorflow_came_first  # pylint: disable=global-statement
    if "tensorflow" in sys.modules and not legacy_keras_switched_on():
        _tensorflow_came_first = True
    if LEGACY_KERAS_SWITCH not in os.environ:
        os.environ[LEGACY_KERAS_SWITCH] = "1"
        os.environ[_SET_BY_PACKAGE] = "1"


def release_legacy_keras():
    """Unsets TF_USE_LEGACY_KERAS if `prefer_legacy_keras` set it and TensorFlow is not imported."""
    if "tensorflow" not in sys.modules and os.environ.get(_SET_BY_PACKAGE) == "1":
        os.environ.pop(LEGACY_KERAS_SWITCH, None)
        os.environ.pop(_SET_BY_PACKAGE, None)


def switch_set_before_tensorflow():
    """False when TensorFlow was imported without the switch before legacy_share set it."""
    return not _tensorflow_came_first


def keras_in_use():
    """The Keras a TensorFlow imported now serves: 3 (Keras 3) or 2 (tf_keras / TF < 2.16 tf.keras).

    Reads the environment (and the TensorFlow already imported, if any); imports nothing.
    """
    tf = sys.modules.get("tensorflow")
    version = getattr(tf, "__version__", None) or _installed_tensorflow_version()
    if version is not None and tensorflow_minor(version) < (2, 16):
        return 2
    return 2 if legacy_keras_switched_on() else 3


def use_keras(flavour):
    """Arranges for TensorFlow to serve Keras `flavour` (3 or 2) in this process, if it still can.

    Before TensorFlow is imported the switch is set (2) or taken back (3) when the user did not
    set it; the CLI, which owns its process, passes `force=True` through `arrange_keras`.
    Raises:
      LegacyKerasError: TensorFlow is imported serving the other Keras, the user's
        TF_USE_LEGACY_KERAS says otherwise, or Keras 3 is asked of TensorFlow < 2.16.
    """
    _arrange(flavour, force=False)


def arrange_keras(flavour):
    """`use_keras` for a process the caller owns (the CLI): the user's switch is overridden."""
    _arrange(flavour, force=True)


def supports_keras3():
    """False on TensorFlow < 2.16, which has no Keras 3."""
    version = _installed_tensorflow_version()
    return version is None or tensorflow_minor(version) >= (2, 16)


def _arrange(flavour, force):
    if flavour not in (2, 3) or isinstance(flavour, bool):
        raise ArgumentError(f"keras must be 3 (Keras 3) or 2 (tf_keras), got {flavour!r}")
    version = _installed_tensorflow_version()
    if flavour == 3 and not supports_keras3():
        raise LegacyKerasError(
            f"Keras 3 needs TensorFlow >= 2.16, this is TensorFlow {version}: export with "
            f"--keras 2 (keras=2), or upgrade TensorFlow.")
    if "tensorflow" not in sys.modules:
        by_package = os.environ.get(_SET_BY_PACKAGE) == "1"
        if flavour == 2:
            if force or LEGACY_KERAS_SWITCH not in os.environ or by_package:
                os.environ[LEGACY_KERAS_SWITCH] = "1"
        elif force:
            os.environ.pop(LEGACY_KERAS_SWITCH, None)
            os.environ.pop(_SET_BY_PACKAGE, None)
        else:
            release_legacy_keras()
    if keras_in_use() != flavour:
        raise LegacyKerasError(_wrong_keras(flavour))


def _wrong_keras(flavour):
    imported = "tensorflow" in sys.modules
    serves = "tf_keras (TF_USE_LEGACY_KERAS=1)" if flavour == 3 else "Keras 3"
    wanted = "Keras 3" if flavour == 3 else "tf_keras"
    if imported:
        return (f"TensorFlow is already imported in this process and serves {serves}, but "
                f"{wanted} is needed: one process holds one Keras; run this in a fresh process "
                f"(the `legacy-share export` command does), with "
                f"{'TF_USE_LEGACY_KERAS unset' if flavour == 3 else 'TF_USE_LEGACY_KERAS=1'} "
                f"and legacy_share.keras imported before tensorflow.")
    return (f"TF_USE_LEGACY_KERAS={os.environ.get(LEGACY_KERAS_SWITCH)!r} is set in the "
            f"environment, so TensorFlow would serve {serves}, but {wanted} is needed: "
            f"{'unset it' if flavour == 3 else 'set it to 1'}.")


def tensorflow_minor(version):
    return tuple(int(part) for part in version.split(".")[:2])


def _installed_tensorflow_version():
    tf = sys.modules.get("tensorflow")
    if tf is not None and getattr(tf, "__version__", None):
        return tf.__version__
    try:
        from importlib import metadata  # pylint: disable=import-outside-toplevel
        return metadata.version("tensorflow")
    except Exception:  # pylint: disable=broad-except
        return None


def quiet_tensorflow(verbose=False, prog="legacy-share"):
    """Silences TensorFlow's start-up logs and deprecation warnings; run before TF is imported.

    Also routes the `legacy_share` logger to stderr as `<prog>: message` (INFO when `verbose`).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning, UserWarning):
        for module in ("tensorflow", "tf_keras", "keras", "absl", "google", "h5py", "numpy",
                       "jax"):
            warnings.filterwarnings("ignore", category=category, module=module + r"(\.|$)")
    # The legacy cells' own deprecation notice, raised where a shared cell calls their __init__.
    warnings.filterwarnings("ignore", message=r"`tf\.nn\.rnn_cell\.\w+` is deprecated")
    try:
        from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass
    # TensorFlow's own ERROR lines are no error of the command (which says its own in one
    # line): e.g. tf_should_use's "Object was never used" when Ctrl-C stops a graph half-built.
    logging.getLogger("tensorflow").setLevel(logging.ERROR if verbose else logging.CRITICAL)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(f"{prog}: %(message)s"))
    log = logging.getLogger("legacy_share")
    if not any(getattr(h, "_legacy_share_cli", False) for h in log.handlers):
        handler._legacy_share_cli = True  # pylint: disable=protected-access
        log.addHandler(handler)
    log.setLevel(logging.INFO if verbose else logging.WARNING)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes (an embedding program or a test
    may have replaced it since the handler was made), not to the stream of that moment."""

    def __init__(self):
        super().__init__(sys.stderr)

    def emit(self, record):
        self.stream = sys.stderr
        super().emit(record)


@contextlib.contextmanager
def deferred_signals():
    """Holds SIGINT and SIGTERM back for the body, then delivers the first that came.

    Only in the main thread (elsewhere Python cannot set handlers and the body runs as is).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    handlers = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        handlers[number] = signal.signal(number, lambda n, _: caught.append(n))
    try:
        yield
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
        if caught:
            handler = handlers[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), caught[0])


@contextlib.contextmanager
def keras_config_untouched():
    """For the body (an import of TensorFlow or Keras): no `~/.keras/keras.json` is created.

    Keras 3 and tf_keras write that file at their import when it is missing (TensorFlow imports
    tf_keras when TF_USE_LEGACY_KERAS=1 is set). Where the user has none, KERAS_HOME points
    to a throwaway folder for the import; a user's KERAS_HOME or keras.json is used as it is.
    """
    home = os.path.join(os.path.expanduser("~"), ".keras")
    if "KERAS_HOME" in os.environ or os.path.exists(os.path.join(home, "keras.json")):
        yield
        return
    folder = tempfile.mkdtemp(prefix="legacy-share-keras-home-")
    os.environ["KERAS_HOME"] = folder
    try:
        yield
    finally:
        os.environ.pop("KERAS_HOME", None)
        shutil.rmtree(folder, ignore_errors=True)


def run_with_legacy_keras(module, stdin_text, timeout):
    """`python -m MODULE` in a child process that serves the legacy cells (tf_keras), quiet,
    writing no keras.json, fed `stdin_text` -> its CompletedProcess (text).

    Raises:
      OSError: the child could not start; subprocess.TimeoutExpired: it ran past `timeout` s.
    """
    with keras_config_untouched():  # the child's tf_keras writes no keras.json: the
        # environment is taken inside, with the KERAS_HOME this sets
        env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND",
                                                                _SET_BY_PACKAGE)}
        env.update({LEGACY_KERAS_SWITCH: "1", "TF_CPP_MIN_LOG_LEVEL": "3"})
        return subprocess.run([sys.executable, "-m", module], input=stdin_text,
                              capture_output=True, text=True, env=env, timeout=timeout,
                              check=False)


def import_tensorflow(quiet=True):
    """Imports TensorFlow (through `legacy_share._tf`); when `quiet`, drops its C++ start-up lines.

    TensorFlow >= 2.16 logs through absl before absl logging is initialised, which ignores
    TF_CPP_MIN_LOG_LEVEL, so file descriptor 2 is pointed elsewhere for the import; what was
    written there is shown if the import fails. Ctrl-C and SIGTERM are held back until the
    import is done: raised inside it, a KeyboardInterrupt was swallowed by TensorFlow's own
    imports, turned into an ImportError, or left native modules half set up (a crash at exit).
    """
    with deferred_signals(), keras_config_untouched():
        if not quiet or "tensorflow" in sys.modules:
            _import_tf()
            return
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                _import_tf()
            except KerasBackendError:
                raise  # says it all; TensorFlow's start-up lines would only hide it
            except BaseException:
                os.dup2(saved, 2)
                sink.seek(0)
                sys.stderr.write(sink.read().decode("utf-8", "replace"))
                raise
            finally:
                os.dup2(saved, 2)
                os.close(saved)


def _import_tf():
    """`import legacy_share._tf`; Keras 3's failure to load its backend as KerasBackendError.

    TensorFlow serving Keras 3 imports it, and Keras raises ValueError for a KERAS_BACKEND it
    does not know (an ImportError for one not installed, which TensorFlow ignores).
    """
    try:
        import legacy_share._tf  # pylint: disable=import-outside-toplevel,unused-import
    except (ImportError, ValueError) as exc:
        if keras_in_use() == 3 and _raised_in_keras(exc):
            raise KerasBackendError(keras_backend_failure(exc)) from exc
        raise


def _raised_in_keras(exc):
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_globals.get("__name__", "").startswith("keras.")


def keras_backend_failure(exc):
    """The message of a KerasBackendError: Keras 3 could not load the backend it was told to."""
    wanted = os.environ.get("KERAS_BACKEND")
    source = (f"KERAS_BACKEND={wanted!r}" if wanted is not None else
              "the \"backend\" of keras.json in KERAS_HOME or ~/.keras")
    message = str(exc).strip().splitlines()
    return (f"Keras 3 cannot start with the backend of {source}: "
            f"{message[0] if message else type(exc).__name__}; the export builds its model "
            f"with TensorFlow: run it with KERAS_BACKEND=tensorflow")


def prepare_tensorflow(verbose=False, prog="legacy-share"):
    """`quiet_tensorflow`, then `import_tensorflow`: for scripts that print to a person."""
    quiet_tensorflow(verbose, prog=prog)
    import_tensorflow(quiet=not verbose)
