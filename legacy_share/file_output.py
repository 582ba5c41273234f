"""`export`'s output door: a file, a pair of files or a folder, claimed and replaced as migrate's.

`FileOutput` is `destination.Output` (the claim, the temp-folder sweep, created folders removed
on failure, SIGINT / SIGTERM held back while moving) for what `export` writes:

    file    out/m.keras
    pair    out/m.weights.h5 and out/m.model.json (the architecture beside the weights)
    folder  out/m/  (a SavedModel)

The run writes `out/.m.keras.legacy-share-XXXXXXXX/m.keras` (the same names for the others),
and `commit` moves it into place. An existing output is replaced only with `force` and only if
it is what an export writes (a `.keras` zip, an HDF5 file and a Keras JSON, a SavedModel folder);
never a link, never an input of the run or a folder holding one.
"""

import contextlib
import ctypes
import errno
import json
import os
import re
import stat
import zipfile

from legacy_share import errors
from legacy_share import file_systems
from legacy_share import tf_paths
from legacy_share._process import deferred_signals
from legacy_share.destination import MAX_BASE, TEMP_MARK, Output

__all__ = ["FILE", "PAIR", "FOLDER", "FileOutput", "output_path"]

FILE, PAIR, FOLDER = "file", "pair", "folder"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_JSON_LIMIT = 64 << 20
_SAVED_MODEL_ENTRIES = {"saved_model.pb", "saved_model.pbtxt", "variables", "assets",
                        "assets.extra", "fingerprint.pb", "keras_metadata.pb"}
_VARIABLES_FILE = re.compile(r"variables\.(index|data-\d{5}-of-\d{5})")
_OLD = "old"  # the name of a replaced output in the temp folder, until the folder goes
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def output_path(dst, kind):
    """The absolute path of export destination `dst` (`~` expanded) -> str; OutputError for
    an empty name, a file name ending in a slash, or a name too long for the files next to it."""
    given = tf_paths.given_path(dst, "output")
    if not given:
        raise errors.OutputError(
            "the destination is empty; give a file such as model.keras or a folder.")
    if file_systems.is_url(given):  # never a local path: `ram://b/m.keras` is no folder `ram:`
        file_systems.check_output_url(given, "destination")
    if kind != FOLDER and given.endswith(("/", os.sep)):
        raise errors.OutputError(f"{given}: names a folder; give a file name without the "
                                     f"trailing slash.")
    path = given.rstrip("/") if file_systems.is_url(given) else os.path.abspath(given)
    base = os.path.basename(path)
    if not base or base in (".", ".."):
        raise errors.OutputError(
            f"{given}: is {path}, which an export cannot replace; give a new folder inside it.")
    if len(base.encode("utf-8", "surrogateescape")) > MAX_BASE:
        raise errors.OutputError(
            f"{path}: the name has {len(base.encode('utf-8', 'surrogateescape'))} bytes; the "
            f"files written next to it need it to have at most {MAX_BASE}, give a shorter one.")
    return path


class FileOutput(Output):
    """A claimed export destination: `with FileOutput(dst, kind, inputs) as out`.

    `out.written` are the paths to write in the temp folder (the weights, then the
    architecture for a pair); `commit` moves them to `out.paths`.

    Args:
      dst: the absolute destination (see `output_path`).
      kind: FILE, PAIR or FOLDER.
      inputs: every input file of the run: never replaced, nor a folder holding one.
      companion: the architecture file of a pair (`m.model.json`).
    """

    def __init__(self, dst, kind, inputs, companion=None):
        super().__init__(dst, inputs)
        self.kind = kind
        self.paths = [dst] + ([companion] if kind == PAIR else [])
        self._names = [os.path.basename(path) for path in self.paths]
        self._force = False

    @property
    def written(self):
        """Where the run writes, inside the temp folder: [the output, (its architecture)]."""
        return [os.path.join(self.temp, name) for name in self._names]

    def check(self, force):
        """Raises unless the destination may be written: not an input, not a folder holding
        one, absent, or (with `force`) something an export wrote."""
        self._force = force
        for path in self.paths:
            real = os.path.realpath(path)
            held = sorted(p for p in self.inputs if p.startswith(real + os.sep))
            if self._is_input(path) or held:
                what = f"holds the input {held[0]}" if held else "is an input of this run"
                raise errors.OutputError(
                    f"{path}: {what}; the input is never replaced, give another destination.")
        existing = [path for path in self.paths if os.path.lexists(path)]
        if existing and not force:
            raise errors.DestinationExistsError(
                f"{existing[0]} exists; pass --force (force=True) to replace it")
        for path in existing:
            _replaceable(path, self.kind)

    def ensure_space(self, nbytes):
        """Raises OutputError, before anything is written, if the destination's file system
        has fewer than `nbytes` bytes free."""
        try:
            info = os.statvfs(self.folder)
        except (OSError, AttributeError):
            return
        free = info.f_bavail * info.f_frsize
        if free < nbytes:
            raise errors.OutputError(
                f"{self.dst}: No space left on device: the export needs about "
                f"{_mib(nbytes)} and {self.folder} has {_mib(free)} free; free some space or "
                f"choose another destination (nothing was written).")

    def _dead_temp_name(self):
        # Also the temp folders of versions before this one: `.m.keras.XXXXXXXX.legacy-share-tmp`.
        base = re.escape(f".{self.base}")
        return re.compile(f"{base}{re.escape(TEMP_MARK)}[a-z0-9_]{{8}}"
                          f"|{base}\\.[a-z0-9_]{{8}}\\.legacy-share-tmp")

    def _is_temp_entry(self, name, info):
        if name in self._names or name in (_OLD, _OLD + ".model.json", self.base + ".old"):
            return stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)
        return False

    def commit(self):  # pylint: disable=arguments-differ
        """Moves the written output into place: the old output or the new one, never a mix.

        A file by one rename; a folder by exchanging it with the old one (renameat2), or, where
        that is missing, the old one moved aside first; a pair: the old weights go first, the
        architecture comes before the new weights. SIGINT and SIGTERM wait until it is done.
        Raises OutputError if a move fails (the old output is put back).
        """
        with deferred_signals():
            self.raise_if_signalled()
            self.check(self._force)  # again: something may have been put there meanwhile
            aside = []
            moved = []
            try:
                if self.kind == PAIR:
                    aside = self._move_aside([self.paths[0], self.paths[1]])
                if self.kind == FOLDER and os.path.lexists(self.dst):
                    _exchange_or_replace(self.written[0], self.dst,
                                         os.path.join(self.temp, _OLD), aside)
                    moved.append(self.dst)
                else:
                    for source, target in reversed(list(zip(self.written, self.paths))):
                        os.replace(source, target)
                        moved.append(target)
            except OSError as exc:
                self._put_back(moved, aside)
                raise errors.OutputError(
                    f"{self.dst}: cannot move the output into place ({exc.strerror}); the "
                    f"destination was left as it was. Check free space and permissions.") from exc
            self.committed = True

    def _move_aside(self, paths):
        """Moves the existing `paths` into the temp folder -> [(where it went, where it was)]."""
        aside = []
        for path, name in zip(paths, (_OLD, _OLD + ".model.json")):
            if os.path.lexists(path):
                os.replace(path, os.path.join(self.temp, name))
                aside.append((os.path.join(self.temp, name), path))
        return aside

    @staticmethod
    def _put_back(moved, aside):
        """After a failed move: removes the new files moved in, puts the old output back."""
        with contextlib.suppress(OSError):
            for path in moved:
                os.remove(path)
            for source, target in aside:
                os.replace(source, target)


def _exchange_or_replace(new, dst, old, aside):
    """Puts folder `new` at `dst`, the old `dst` ending at `new` (exchanged) or `old`."""
    try:
        _rename_exchange(new, dst)
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise
    os.replace(dst, old)
    aside.append((old, dst))
    os.replace(new, dst)


def _rename_exchange(first, second):
    """Swaps two paths in one step (Linux renameat2 RENAME_EXCHANGE); OSError(ENOSYS) elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        raise OSError(errno.ENOSYS, "renameat2 is missing") from None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
    if function(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), second)


def _replaceable(path, kind):
    """Raises DestinationExistsError unless `path` is what an export writes there."""
    info = os.lstat(path)
    what = None
    if stat.S_ISLNK(info.st_mode):
        what = "is a symbolic link"
    elif kind == FOLDER:
        what = _not_saved_model(path) if stat.S_ISDIR(info.st_mode) else "is not a folder"
    elif not stat.S_ISREG(info.st_mode):
        what = "is a folder" if stat.S_ISDIR(info.st_mode) else "is not a regular file"
    elif path.endswith(".keras"):
        what = _not_keras_file(path)
    elif path.endswith(".weights.h5"):
        what = _not_hdf5(path)
    else:
        what = _not_keras_json(path, info.st_size)
    if what:
        raise errors.DestinationExistsError(
            f"{path}: {what}; --force replaces only what an export writes (a SavedModel "
            f"folder, a .keras file, a .weights.h5 with its .model.json): move it away or give "
            f"another destination.")


def _not_saved_model(path):
    names = sorted(os.listdir(path))
    foreign = [n for n in names if n not in _SAVED_MODEL_ENTRIES]
    if foreign:
        return f"holds {foreign[0]!r}, which no SavedModel holds"
    if names and "saved_model.pb" not in names and "saved_model.pbtxt" not in names:
        return "has no saved_model.pb"
    variables = os.path.join(path, "variables")
    if os.path.lexists(variables):
        if os.path.islink(variables) or not os.path.isdir(variables):
            return "has a 'variables' that is not a folder"
        foreign = [n for n in sorted(os.listdir(variables)) if not _VARIABLES_FILE.fullmatch(n)]
        if foreign:
            return f"holds variables/{foreign[0]}, which no SavedModel holds"
    return None


def _not_keras_file(path):
    try:
        with _open(path) as handle, zipfile.ZipFile(handle) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return "is not a .keras file (a zip archive)"
    return None if "config.json" in names else "is a zip archive without a Keras config.json"


def _not_hdf5(path):
    with _open(path) as handle:
        head = handle.read(len(_HDF5_SIGNATURE))
    return None if head == _HDF5_SIGNATURE else "is not an HDF5 file"


def _not_keras_json(path, size):
    if size > _JSON_LIMIT:
        return f"has {size} bytes, more than a model's architecture"
    try:
        with _open(path) as handle:
            document = json.loads(handle.read())
    except (ValueError, UnicodeDecodeError):
        document = None
    if not (isinstance(document, dict) and "class_name" in document and "config" in document):
        return "is not a Keras model architecture (JSON with class_name and config)"
    return None


def _open(path):
    """Opens regular file `path` for reading without following a link or waiting on a FIFO."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    return os.fdopen(fd, "rb")


def _mib(nbytes):
    return f"{nbytes / 2**20:.1f} MiB"
