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
from legacy_share import file_output
from legacy_share import file_systems
from legacy_share._process import deferred_signals
from legacy_share.destination import TEMP_MARK, Output, destination_files, state_of
from legacy_share.reading import data_files
from legacy_share.state_file import STATE_FILE

__all__ = ["RemoteOutput", "RemoteFileOutput"]

_TEMP_RANDOM = 4  # bytes: 8 hex digits, as the local temp folders' names
# The folders of a SavedModel; ram:// lists no subfolder (its listdir and walk miss them),
# so what may be in them is looked for by name as well.
_SAVED_MODEL_FOLDERS = ("", "/variables", "/assets", "/assets.extra")


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
        self._inner = []  # names of folders the run writes inside its temp folder
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
                _remove_tree(self.temp, self._inner)
            self.temp = None
            if not self.committed:
                for path in self._moved:
                    with contextlib.suppress(errors.CheckpointError, errors.OutputError):
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
        Raises OutputError saying what is at the destination if a move fails.
        """
        dst = self.dst
        with deferred_signals():
            self.raise_if_signalled()
            old = destination_files(dst)
            if old and state_of(dst) == "only":
                file_systems.remove(os.path.join(self.folder, STATE_FILE))
            for path in sorted(old, key=lambda p: not p.endswith(".index")):  # index first
                file_systems.remove(path)
            self._move_in([(path, dst + path[len(out):]) for path in data_files(out)]
                          + [(out + ".index", dst + ".index")], dst, old)
            if state is not None:
                try:
                    file_systems.rename(state, os.path.join(self.folder, STATE_FILE))
                except (errors.CheckpointError, errors.OutputError) as exc:
                    raise errors.OutputError(
                        f"{os.path.join(self.folder, STATE_FILE)}: cannot write the state file "
                        f"({exc}); {dst} itself is complete, give its prefix instead of its "
                        f"folder.") from exc

    def _move_in(self, moves, dst, old):
        """Renames each (source, target) in order (the last one makes the output exist), each
        target noted for the clean-up; OutputError naming `dst` if one fails."""
        try:
            for source, target in moves:
                self._moved.append(target)
                file_systems.rename(source, target)
        except (errors.CheckpointError, errors.OutputError) as exc:
            gone = " and the old output was removed" if old else ""
            raise errors.OutputError(
                f"{dst}: cannot move the output into place ({exc}); nothing new was left "
                f"there{gone}.") from exc
        self.committed = True


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


class RemoteFileOutput(RemoteOutput):
    """`export`'s destination at a URL: a file, a pair of files or a SavedModel folder.

    As file_output.FileOutput: `written` are the paths to write in the temp folder, `check`
    refuses an input or an existing output without `force` (with it, only what an export
    writes), `commit` moves the written output into place. A folder is moved file by file,
    `saved_model.pb` last (what makes it a SavedModel); an old one is removed first.
    """

    def __init__(self, dst, kind, inputs, companion=None):
        super().__init__(dst, inputs)
        self.kind = kind
        self.paths = [dst] + ([companion] if kind == file_output.PAIR else [])
        self._names = [os.path.basename(path) for path in self.paths]
        self._inner = self._names if kind == file_output.FOLDER else []
        self._force = False

    @property
    def written(self):
        """Where the run writes, inside the temp folder: [the output, (its architecture)]."""
        return [os.path.join(self.temp, name) for name in self._names]

    def check(self, force):
        """Raises unless the destination may be written (see file_output.FileOutput.check)."""
        self._force = force
        for path in self.paths:
            if path in self.inputs or any(p.startswith(path + "/") for p in self.inputs):
                raise errors.OutputError(
                    f"{path}: is or holds an input of this run; the input is never replaced, "
                    f"give another destination.")
        existing = [path for path in self.paths if _remote_exists(path)]
        if existing and not force:
            raise errors.DestinationExistsError(
                f"{existing[0]} exists; pass --force (force=True) to replace it")
        for path in existing:
            _replaceable(path, self.kind)

    def ensure_space(self, nbytes):  # pylint: disable=unused-argument,no-self-use
        """A bucket tells no free space: the first failed write stops the run."""

    def commit(self):  # pylint: disable=arguments-differ
        """Moves the written output into place, the old one (with `force`) removed first."""
        with deferred_signals():
            self.raise_if_signalled()
            self.check(self._force)
            moves = self._moves()
            old = [path for path in self.paths if _remote_exists(path)]
            for path in old:
                if file_systems.isfile(path):
                    file_systems.remove(path)
                else:
                    _remove_tree(path)
            self._move_in(moves, self.dst, old)

    def _moves(self):
        """[(source, target)] in the order that keeps a half-moved output unusable."""
        if self.kind != file_output.FOLDER:  # a pair: the architecture before the weights
            return list(reversed(list(zip(self.written, self.paths))))
        root = self.written[0]
        files = sorted(_files_under(root), key=lambda name: (name == "/saved_model.pb", name))
        return [(root + name, self.dst + name) for name in files]


def _files_under(root, inner=()):
    """Every file under URL folder `root` (and SavedModel folders `inner` in it), as names
    relative to `root` ('/saved_model.pb', '/variables/variables.index'), sorted."""
    found = {os.path.join(folder, name)[len(root):]
             for folder, _, names in file_systems.walk(root) for name in names}
    for top in [""] + ["/" + name for name in inner]:
        for sub in _SAVED_MODEL_FOLDERS:
            found.update(path[len(root):] for path in file_systems.glob(root + top + sub + "/*")
                         if file_systems.isfile(path))
    return sorted(found)


def _remove_tree(root, inner=()):
    """Removes URL folder `root` and every file in it (errors are ignored: a cleanup)."""
    for name in _files_under(root, inner):
        with contextlib.suppress(errors.CheckpointError, errors.OutputError):
            file_systems.remove(root + name)
    for sub in [""] + ["/" + name for name in inner]:
        for folder in reversed(_SAVED_MODEL_FOLDERS):
            file_systems.rmtree(root + sub + folder)


def _remote_exists(path):
    return file_systems.isfile(path) or bool(file_systems.glob(path + "/*"))


def _replaceable(path, kind):
    """Raises DestinationExistsError unless URL `path` is what an export writes there."""
    # pylint: disable=protected-access
    what = None
    if kind == file_output.FOLDER:
        names = {os.path.basename(p) for p in file_systems.glob(path + "/*")}
        foreign = sorted(names - file_output._SAVED_MODEL_ENTRIES)
        if foreign or "saved_model.pb" not in names:
            what = (f"holds {foreign[0]!r}, which no SavedModel holds" if foreign
                    else "has no saved_model.pb")
    elif path.endswith(".keras"):
        if file_systems.read_head(path, 4) != b"PK\x03\x04":
            what = "is not a .keras file (a zip archive)"
    elif path.endswith(".weights.h5"):
        if file_systems.read_head(path, 8) != file_output._HDF5_SIGNATURE:
            what = "is not an HDF5 file"
    if what:
        raise errors.DestinationExistsError(
            f"{path}: {what}; --force replaces only what an export writes (a SavedModel "
            f"folder, a .keras file, a .weights.h5 with its .model.json): move it away or give "
            f"another destination.")
