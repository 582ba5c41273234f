"""Guards for tests that run the migrator: the input must come out byte for byte the same."""

import contextlib
import glob
import hashlib
import os
import stat


def snapshot(*roots):
    """{path: (sha256, size, mtime_ns)} of every file under the folders (or next to the prefixes) `roots`."""
    found = {}
    for root in roots:
        if os.path.isdir(root):
            paths = [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]
        else:
            paths = glob.glob(glob.escape(root) + "*")
        for path in paths:
            if os.path.isfile(path) and not os.path.islink(path) and not _is_fifo(path):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                info = os.stat(path)
                found[path] = (digest, info.st_size, info.st_mtime_ns)
    return found


def _is_fifo(path):
    return stat.S_ISFIFO(os.stat(path).st_mode)


@contextlib.contextmanager
def untouched(*roots):
    """Asserts that no file under `roots` is changed, added or removed by the body."""
    before = snapshot(*roots)
    assert before, f"nothing to guard under {roots}"
    yield
    assert snapshot(*roots) == before, "the input was modified"
