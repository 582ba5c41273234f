"""Every file a run creates, replaces or removes next to its output prefix, and nothing else.

As git does with `.lock` files and rsync with its temp files: a file is created with
O_CREAT|O_EXCL|O_NOFOLLOW (never through a link planted at its name), removed only while it is
still the one this run made (same device and inode), and a left-over of a dead run is removed
only if it is what this run would have made. The layout for prefix `out/model.ckpt`:

    out/.model.ckpt.legacy-share-lock       the claim: an flock held while the run lives
    out/.model.ckpt.legacy-share-XXXXXXXX/  the temp folder: shards, `out.*`, `checkpoint`

The claim makes every temp folder of the same prefix a dead run's, whatever pid namespace
it ran in. `Output.commit` is the commit point: once the index is in place, the new output
is complete and is never removed again.
"""

import contextlib
import errno
import logging
import os
import re
import shutil
import stat
import tempfile

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, concurrent runs are not detected
    fcntl = None

from legacy_share import errors
from legacy_share import file_systems
from legacy_share import tf_paths
from legacy_share._process import deferred_signals
from legacy_share.noted_signals import NotedSignals
from legacy_share.reading import data_files
from legacy_share.state_file import STATE_FILE, read_state

__all__ = ["Output", "output_prefix", "destination_files", "lock_path"]

_LOG = logging.getLogger("legacy_share")
LOCK_SUFFIX = ".legacy-share-lock"
TEMP_MARK = ".legacy-share-"
_TEMP_RANDOM = 8  # tempfile's random part
_NAME_MAX = 255
MAX_BASE = _NAME_MAX - len("." + TEMP_MARK) - _TEMP_RANDOM  # the longest name of the three
_OUR_TEMP_FILE = re.compile(r"(part-\d{5}|out|old)(\.index|\.data-\d{5}-of-\d{5})(\.tempstate\d+)?"
                            r"|" + STATE_FILE)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def output_prefix(dst):
    """The absolute output prefix for `dst` -> str; OutputError for a name that cannot be one.

    Refused up front: a folder (trailing slash), a name that is not UTF-8 or holds a control
    character (TensorFlow and the state file cannot carry it), the last name `checkpoint`
    (the state file would name itself) and names too long for the files next to it.
    """
    given = tf_paths.given_path(dst, "output")
    url = file_systems.is_url(given)
    if url:  # never a local path: `ram://b/out` must not become the folder `ram:`
        file_systems.check_output_url(given)
    if given.endswith(("/", os.sep)):
        raise errors.OutputError(
            f"{given}: names a folder; give an output prefix such as "
            f"{os.path.join(given, 'model.ckpt')}.")
    dst = given if url else os.path.abspath(given)
    folder, base = os.path.split(dst)
    shown = dst.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    try:
        dst.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.OutputError(  # pylint: disable=raise-missing-from
            f"{shown}: the name is not UTF-8; TensorFlow and the `checkpoint` state file "
            f"carry UTF-8 names only, give a UTF-8 output path.")
    if any(ord(c) < 32 or ord(c) == 127 for c in dst):
        raise errors.OutputError(
            f"{dst!r}: the name holds a control character (a newline?), which the "
            f"`checkpoint` state file cannot carry; give an output path without one.")
    tf_paths.check_literal(dst, "output")
    if base == STATE_FILE:
        raise errors.OutputError(
            f"{dst}: `{STATE_FILE}` is the name of the state file that Saver keeps next to its "
            f"checkpoints; give another prefix such as {os.path.join(folder, 'model.ckpt')}.")
    if len(base.encode("utf-8")) > MAX_BASE:
        raise errors.OutputError(
            f"{dst}: the name has {len(base.encode('utf-8'))} bytes; the files written next to "
            f"it need it to have at most {MAX_BASE}, give a shorter prefix.")
    return dst


def destination_files(dst):
    """The files of an existing output at prefix `dst` (index and data files), sorted."""
    found = data_files(dst)
    if file_systems.exists(dst + ".index"):
        found.append(dst + ".index")
    return sorted(found)


def lock_path(dst):
    """The lock file that claims prefix `dst`."""
    folder, base = os.path.split(dst)
    return os.path.join(folder, f".{base}{LOCK_SUFFIX}")


def state_of(dst):
    """What the `checkpoint` state file next to `dst` says of it -> "absent", "only" (names
    `dst` and nothing else), "other" (does not name it) or "shared" (names it and others, or
    cannot be read: not ours to rewrite)."""
    folder, base = os.path.split(dst)
    if not file_systems.exists(os.path.join(folder, STATE_FILE)):
        return "absent"
    try:
        state = read_state(folder)
    except errors.CheckpointError:
        return "shared"
    named = [state.model_checkpoint_path] + list(state.all_model_checkpoint_paths)
    hits = [value in (base, dst) for value in named if value]
    if hits and all(hits):
        return "only"
    return "shared" if any(hits) else "other"


def _identity(info):
    return (info.st_dev, info.st_ino)


class Output(NotedSignals):
    """A claimed output prefix with a temp folder next to it: `with Output(dst, inputs) as out`.

    Entering creates missing folders, takes the claim, removes temp folders of dead runs for
    the same prefix and makes `out.temp`. Leaving removes the temp folder and the claim, and,
    unless `commit` put the output in place, the folders it created.

    Args:
      dst: the absolute output prefix (see `output_prefix`).
      inputs: paths of every input file of this run: never removed, truncated or used as ours.
    """

    def __init__(self, dst, inputs):
        self.dst = dst
        self.folder, self.base = os.path.split(dst)
        self.inputs = {os.path.realpath(path) for path in inputs}
        self.input_ids = set()
        for path in inputs:
            with contextlib.suppress(OSError):
                self.input_ids.add(_identity(os.stat(path)))
        self.temp = None
        self.committed = False
        self._created = []
        self._lock = None
        self._temp_id = None
        self._signals = {}  # number -> the handler before ours; `signalled` lists those that came
        self.signalled = []
        self._unraisable_hook = None  # sys.unraisablehook before ours

    def __enter__(self):
        try:
            self._note_signals()
            self._created = _make_folders(self.folder)
            self._lock = self._claim()
            self._remove_dead_temps()
            self.temp = tempfile.mkdtemp(prefix=f".{self.base}{TEMP_MARK}", dir=self.folder)
            self._temp_id = _identity(os.lstat(self.temp))
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, kind, exc, trace):
        if isinstance(exc, KeyboardInterrupt):  # for the one line: was the output complete?
            exc.written = self.dst if self.committed else None
        self._release()
        return False

    def _release(self):
        try:
            self._clean_up()
        finally:
            self._restore_signals()

    def _clean_up(self):
        with deferred_signals():  # a second Ctrl-C must not stop the cleanup half-way
            if self.temp is not None and self._is_ours(self.temp, self._temp_id):
                shutil.rmtree(self.temp, ignore_errors=True)
            self.temp = None
            if self._lock is not None:
                path, fd, identity = self._lock
                try:
                    if self._is_ours(path, identity):
                        os.remove(path)
                finally:
                    os.close(fd)
                self._lock = None
            if not self.committed:
                for path, identity in self._created:  # deepest first; stops at a non-empty one
                    if not self._is_ours(path, identity):
                        break
                    try:
                        os.rmdir(path)
                    except OSError:
                        break
            self._created = []

    @staticmethod
    def _is_ours(path, identity):
        try:
            return _identity(os.lstat(path)) == identity
        except OSError:
            return False

    def _is_input(self, path):
        try:
            same = _identity(os.stat(path)) in self.input_ids
        except OSError:
            same = False
        return same or os.path.realpath(path) in self.inputs

    def _claim(self):
        """Takes the flock on the lock file -> (path, fd, identity); None without fcntl.

        The kernel releases it when the process dies, even by SIGKILL, so a lock file left
        behind is never stale: the next run takes it over, if it is what a lock file looks like.
        """
        if fcntl is None:
            return None
        path = lock_path(self.dst)
        if self._is_input(path):
            raise errors.OutputError(
                f"{path}: is an input of this run, and the name of the lock file of {self.dst}; "
                f"give another output prefix.")
        while True:
            created = True
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
            except FileExistsError:
                created = False
                fd = _open_existing(path, self.dst)
                if fd is None:
                    continue  # removed meanwhile by the run that held it
            try:
                claim = self._take(path, fd, created)
            except BaseException:
                os.close(fd)
                raise
            if claim is not None:
                return claim
            os.close(fd)

    def _take(self, path, fd, created):
        info = os.fstat(fd)
        problem = ""
        if not stat.S_ISREG(info.st_mode):
            problem = "is not a regular file"
        elif info.st_nlink != 1:
            problem = f"has {info.st_nlink} hard links"
        elif hasattr(os, "geteuid") and info.st_uid != os.geteuid():
            problem = f"belongs to user {info.st_uid}"
        elif not created and info.st_size and (
                info.st_size > 32 or not os.pread(fd, 32, 0).strip().isdigit()):
            problem = "holds something other than a pid"
        if problem or _identity(info) in self.input_ids:
            raise errors.OutputError(
                f"{path}: {problem or 'is an input of this run'}, so it is no lock file of "
                f"legacy-share; remove it if no legacy-share run writes {self.dst}, or give "
                f"another output prefix.")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise errors.DestinationExistsError(  # pylint: disable=raise-missing-from
                f"{self.dst}: another legacy-share run (pid {holder}) is writing there; wait "
                f"for it to finish, then choose another prefix or --force.")
        if not self._is_ours(path, _identity(info)):
            return None  # the holder removed the file between our open and flock: retry
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return path, fd, _identity(info)

    def _dead_temp_name(self):
        """The names of this prefix's temp folders, as a compiled regex."""
        return re.compile(re.escape(f".{self.base}{TEMP_MARK}") + f"[a-z0-9_]{{{_TEMP_RANDOM}}}")

    def _remove_dead_temps(self):
        """Removes temp folders of this prefix: with the claim held, their runs are dead."""
        mark = self._dead_temp_name()
        for name in os.listdir(self.folder):
            path = os.path.join(self.folder, name)
            if not mark.fullmatch(name) or not self._looks_like_our_temp(path):
                continue
            _LOG.info("removing %s, left by an interrupted run", path)
            shutil.rmtree(path, ignore_errors=True)

    def _looks_like_our_temp(self, path):
        """A folder of ours holding only what a run writes there, and no input of this run."""
        try:
            info = os.lstat(path)
            names = os.listdir(path)
        except OSError:
            return False
        if not stat.S_ISDIR(info.st_mode) or (
                hasattr(os, "geteuid") and info.st_uid != os.geteuid()):
            return False
        inside = os.path.realpath(path) + os.sep
        if any(p.startswith(inside) for p in self.inputs):
            return False
        return all(self._is_temp_entry(name, os.lstat(os.path.join(path, name)))
                   for name in names)

    def _is_temp_entry(self, name, info):  # pylint: disable=no-self-use
        """Whether `name` (lstat `info`) is what a run writes into its temp folder."""
        return bool(_OUR_TEMP_FILE.fullmatch(name)) and stat.S_ISREG(info.st_mode)

    def write_state(self, text):
        """Writes the state file `text` into the temp folder, for `commit` to move -> its path."""
        path = os.path.join(self.temp, STATE_FILE)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path

    def commit(self, out, state=None):
        """Moves the checkpoint at temp prefix `out` (and state file `state`) to the prefix.

        Data files first, then the index (the commit point: from here the output is complete
        and stays), then the state file. SIGINT and SIGTERM wait until it is done.
        Raises OutputError saying what is at the destination if a move fails.
        """
        dst = self.dst
        with deferred_signals():
            self.raise_if_signalled()
            old = destination_files(dst)
            if old:
                # From here on, a crash must not leave a state file naming a half-replaced
                # output, nor the old index over new data files: both go first. The old files
                # are moved into the temp folder, not replaced: replacing a large file frees its
                # blocks inside the rename, which would widen the moment without an index.
                if state_of(dst) == "only":
                    os.remove(os.path.join(self.folder, STATE_FILE))
                for path in sorted(old, key=lambda p: not p.endswith(".index")):  # index first
                    os.replace(path, os.path.join(self.temp, "old" + path[len(dst):]))
            moved = []
            try:
                for path in data_files(out):
                    target = dst + path[len(out):]
                    os.replace(path, target)
                    moved.append(target)
                os.replace(out + ".index", dst + ".index")
            except OSError as exc:
                for path in moved:
                    os.remove(path)
                gone = " and the old output was removed" if old else ""
                raise errors.OutputError(
                    f"{dst}: cannot move the output into place ({exc.strerror}); nothing new "
                    f"was left there{gone}. Check free space and permissions.") from exc
            self.committed = True  # the old files go with the temp folder
            _LOG.info("wrote %s (%d data file(s))", dst, len(moved))
            if state is not None:
                try:
                    os.replace(state, os.path.join(self.folder, STATE_FILE))
                except OSError as exc:
                    raise errors.OutputError(
                        f"{os.path.join(self.folder, STATE_FILE)}: cannot write the state file "
                        f"({exc.strerror}); {dst} itself is complete, give its prefix instead "
                        f"of its folder.") from exc


def _open_existing(path, dst):
    """Opens an existing lock file without following a link -> fd, or None if it is gone."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            raise errors.OutputError(
                f"{path}: is {'a symbolic link' if stat.S_ISLNK(info.st_mode) else 'not a file'}"
                f", so it is no lock file of legacy-share; remove it if no legacy-share run "
                f"writes {dst}, or give another output prefix.")
        return os.open(path, os.O_RDWR | os.O_NONBLOCK | _NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # became a link after the lstat
            return _open_existing(path, dst)
        raise


def _make_folders(folder):
    """Creates `folder` and its missing parents -> [(path, identity)] of those created, deepest first.

    If one cannot be made, those already made are removed before the error is raised.
    """
    missing = []
    current = folder
    while current and not os.path.lexists(current):
        missing.append(current)
        current = os.path.dirname(current)
    created = []
    for path in reversed(missing):
        try:
            os.mkdir(path)
            created.insert(0, (path, _identity(os.lstat(path))))
        except FileExistsError as exc:
            # Another run made it between our look and our mkdir: it is that run's to remove.
            if os.path.isdir(path) and not os.path.islink(path):
                continue
            _remove_made(created)
            raise errors.OutputError(
                f"{path}: cannot create the output folder ({exc.strerror}); give an output "
                f"prefix in a folder you can write.") from exc
        except OSError as exc:
            _remove_made(created)
            raise errors.OutputError(
                f"{path}: cannot create the output folder ({exc.strerror}); give an output "
                f"prefix in a folder you can write.") from exc
    return created


def _remove_made(created):
    """Removes the folders `_make_folders` made, if they are still the ones it made."""
    for made, identity in created:
        with contextlib.suppress(OSError):
            if _identity(os.lstat(made)) == identity:
                os.rmdir(made)

