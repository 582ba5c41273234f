"""An output prefix at a URL (`gs://bucket/out/model.ckpt`, `ram://...`), written as migrate's.

An object store has no lock, no link, no inode and no atomic rename of a folder; what holds:
the run writes into a temp folder next to the prefix (`.model.ckpt.legacy-share-XXXXXXXX/`),
verifies it there, then moves the data files, then the `.index` (what makes a V2 checkpoint
exist), then the `checkpoint` state file. A failure before the index is in place removes what
this run moved and the folders it made; the temp folder always goes. Two runs writing the same
prefix at once are not detected.
"""

import contextlib
import os
import secrets

from legacy_share import errors
from legacy_share import file_systems
from legacy_share._process import deferred_signals
from legacy_share.destination import TEMP_MARK, Output, destination_files, state_of
from legacy_share.reading import STATE_FILE, data_files

__all__ = ["RemoteOutput"]

_TEMP_RANDOM = 4  # bytes: 8 hex digits, as the local temp folders' names


class RemoteOutput(Output):
    """A claimed-as-far-as-it-can output prefix at a URL: `with RemoteOutput(dst, inputs) as out`.

    Args:
      dst: the output prefix, a URL (see destination.output_prefix).
      inputs: paths of every input file of this run (never removed: the caller checked that
        `dst` is none of them).
    """

    def __init__(self, dst, inputs):  # pylint: disable=super-init-not-called
        self.dst = dst
        self.folder, self.base = os.path.split(dst)
        self.inputs = {file_systems.real(path) for path in inputs}
        self.input_ids = set()
        self.temp = None
        self.committed = False
        self._created = []  # folders this run made, deepest first
        self._moved = []  # files this run put at the destination
        self._signals = {}
        self.signalled = []
        self._unraisable_hook = None

    def __enter__(self):
        try:
            self._note_signals()
            self.temp = os.path.join(
                self.folder, f".{self.base}{TEMP_MARK}{secrets.token_hex(_TEMP_RANDOM)}")
            self._created = _missing_folders(self.temp)
            file_systems.makedirs(self.temp)
        except BaseException:
            self._release()
            raise
        return self

    def _clean_up(self):
        with deferred_signals():  # a second Ctrl-C must not stop the cleanup half-way
            if self.temp is not None:
                file_systems.rmtree(self.temp)
            self.temp = None
            if not self.committed:
                for path in self._moved:
                    with contextlib.suppress(errors.CheckpointError):
                        file_systems.remove(path)
                for path in self._created:  # deepest first; stops at one holding something
                    if _holds_anything(path):
                        break
                    file_systems.rmtree(path)
            self._moved, self._created = [], []

    def write_state(self, text):
        """Writes the state file `text` into the temp folder, for `commit` to move -> its path."""
        path = os.path.join(self.temp, STATE_FILE)
        file_systems.write_text(path, text)
        return path

    def commit(self, out, state=None):
        """Moves the checkpoint at temp prefix `out` (and state file `state`) to the prefix.

        An old output (replaced with --force) goes first, its index first; then the data files,
        the index (the commit point) and the state file. SIGINT and SIGTERM wait until it is done.
        Raises CheckpointError saying what is at the destination if a move fails.
        """
        dst = self.dst
        with deferred_signals():
            self.raise_if_signalled()
            old = destination_files(dst)
            if old and state_of(dst) == "only":
                file_systems.remove(os.path.join(self.folder, STATE_FILE))
            for path in sorted(old, key=lambda p: not p.endswith(".index")):  # index first
                file_systems.remove(path)
            try:
                for path in data_files(out):
                    target = dst + path[len(out):]
                    self._moved.append(target)
                    file_systems.rename(path, target)
                self._moved.append(dst + ".index")
                file_systems.rename(out + ".index", dst + ".index")
            except errors.CheckpointError as exc:
                gone = " and the old output was removed" if old else ""
                raise errors.CheckpointError(
                    f"{dst}: cannot move the output into place ({exc}); nothing new was left "
                    f"there{gone}.") from exc
            self.committed = True
            if state is not None:
                try:
                    file_systems.rename(state, os.path.join(self.folder, STATE_FILE))
                except errors.CheckpointError as exc:
                    raise errors.CheckpointError(
                        f"{os.path.join(self.folder, STATE_FILE)}: cannot write the state file "
                        f"({exc}); {dst} itself is complete, give its prefix instead of its "
                        f"folder.") from exc


def _missing_folders(path):
    """The folders above URL `path` (and it) that do not exist yet, deepest first."""
    missing = []
    current = path
    while "://" in current and not current.endswith("://") and not file_systems.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return missing


def _holds_anything(folder):
    return bool(file_systems.glob(os.path.join(folder, "*")))
