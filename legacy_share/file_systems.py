"""Paths on TensorFlow's file systems (`gs://`, `ram://`, `hdfs://`, `s3://`): local or URL.

A URL is never handed to `os`: it goes through `tf.io.gfile`, the layer TensorFlow's own
checkpoint reader and Saver use, so a checkpoint in a bucket is read tensor by tensor as a local
one is. The functions here take a local path or a URL and answer as `os.path` does for local
paths; every TensorFlow error on a URL becomes a one-line CheckpointError naming the path.

What a URL does not have: links, inodes, advisory locks and an atomic rename of a folder.
"""

import os
import re

from legacy_share import errors
from legacy_share.errors import first_line

__all__ = ["is_url", "scheme", "check_served", "check_output_url", "GCS_SHORT_TIMEOUTS",
           "isfile", "isdir", "exists", "glob", "file_size", "read_head", "read_bytes",
           "write_text", "rename", "remove", "rmtree", "walk", "makedirs", "real", "GFileSource"]

_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# TensorFlow's GCS client retries a failed request 10 times, waiting up to 32 s between tries
# (GetGcsRetryConfig, tensorflow/core/platform/cloud/gcs_file_system.cc), and waits long for
# the GCE metadata server that gives credentials: minutes before an unreachable or forbidden
# bucket is an error. It reads these once, when the first gs:// path is used; a value the user
# set is kept.
GCS_SHORT_TIMEOUTS = {
    "GCS_RETRY_CONFIG_MAX_RETRIES": "2",
    "GCS_RETRY_CONFIG_INIT_DELAY_TIME_US": "200000",
    "GCS_RETRY_CONFIG_MAX_DELAY_TIME_US": "1000000",
    "GCS_REQUEST_CONNECTION_TIMEOUT_SECS": "10",
    "GCS_METADATA_REQUEST_TIMEOUT_SECS": "5",
}
# Schemes TensorFlow itself does not serve, and what serves them.
_PROVIDERS = {"s3": "tensorflow-io", "hdfs": "tensorflow-io", "viewfs": "tensorflow-io",
              "az": "tensorflow-io", "http": "tensorflow-io", "https": "tensorflow-io"}
_served = set()


def scheme(path):
    """The scheme of URL `path` (`gs` for `gs://b/x`) -> str, or None for a local path."""
    match = _URL.match(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else None
    return match.group(1).lower() if match else None


def is_url(path):
    """Whether `path` is a URL (`scheme://...`), which only TensorFlow's file systems open."""
    return scheme(path) is not None


def check_served(path):
    """Raises CheckpointError unless TensorFlow serves the file system of URL `path`.

    A scheme TensorFlow does not serve itself is looked for in tensorflow-io (imported if it is
    installed: it registers s3://, hdfs://, az:// and http://).
    For gs://, short retries are set (GCS_SHORT_TIMEOUTS).
    """
    name = scheme(path)
    if name is None or name in _served:
        return
    from legacy_share._tf import tf  # pylint: disable=import-outside-toplevel
    if name == "gs":
        for key, value in GCS_SHORT_TIMEOUTS.items():
            os.environ.setdefault(key, value)
    if name not in tf.io.gfile.get_registered_schemes():
        try:
            import tensorflow_io  # pylint: disable=import-outside-toplevel,unused-import
        except Exception:  # pylint: disable=broad-except  # absent, or built for another TF
            pass
    if name not in tf.io.gfile.get_registered_schemes():
        provider = _PROVIDERS.get(name)
        fix = (f"install {provider} (pip install {provider}) to read and write {name}:// paths"
               if provider else "give a local path or a gs:// / ram:// URL")
        raise errors.CheckpointError(
            f"{path}: TensorFlow {tf.__version__} serves no {name}:// file system; {fix}.")
    _served.add(name)


def check_output_url(path, what="output"):
    """Raises CheckpointError unless URL `path` is served, OutputError unless it names a path
    inside its bucket."""
    check_served(path)
    name = scheme(path)
    if name != "ram" and not os.fspath(path)[len(name) + 3:].strip("/").count("/"):
        raise errors.OutputError(
            f"{path}: names a bucket, not a path in it; give one such as "
            f"{os.fspath(path).rstrip('/')}/model.ckpt as the {what}.")


def _gfile():
    from legacy_share._tf import tf  # pylint: disable=import-outside-toplevel
    return tf.io.gfile, tf.errors


def _failed(path, exc, doing="read"):
    """A one-line error (see _error) for TensorFlow error `exc` on URL `path`."""
    _, tf_errors = _gfile()
    hint = "check the path, your credentials and the network"
    if isinstance(exc, (tf_errors.PermissionDeniedError, tf_errors.UnauthenticatedError)):
        hint = ("check your credentials (gcloud auth application-default login) and the "
                "bucket's permissions")
    message = re.sub(r"\s+", " ", first_line(exc) or type(exc).__name__)
    return _error(doing)(f"{path}: cannot {doing} it ({message}); {hint}.")


def _error(doing):
    """CheckpointError for a failed read, OutputError for a failed write, move or removal."""
    return errors.CheckpointError if doing == "read" else errors.OutputError


def _call(path, function, *args, doing="read", missing=False):
    """`function(tf.io.gfile, *args)`; a TensorFlow error as a one-line CheckpointError, but
    NotFoundError as it is when the caller answers `missing` itself."""
    check_served(path)
    gfile, tf_errors = _gfile()
    try:
        return function(gfile, *args)
    except tf_errors.NotFoundError:
        if missing:
            raise
        raise _error(doing)(f"{path}: cannot {doing} it (no such file or folder).") from None
    except (tf_errors.OpError, OSError) as exc:
        raise _failed(path, exc, doing) from exc


def _stat(path):
    """gfile's stat of URL `path`, or None if nothing is there."""
    _, tf_errors = _gfile()
    try:
        return _call(path, lambda g: g.stat(path), missing=True)
    except tf_errors.NotFoundError:
        return None


def isfile(path):
    """`os.path.isfile` for a local path or a URL."""
    if not is_url(path):
        return os.path.isfile(path)
    info = _stat(path)
    return info is not None and not info.is_directory


def isdir(path):
    """`os.path.isdir` for a local path or a URL (a URL holding no file of its own name and no
    checkpoint index: ram:// calls every prefix of a file's name a folder)."""
    if not is_url(path):
        return os.path.isdir(path)
    info = _stat(path)
    return info is not None and info.is_directory and _stat(path + ".index") is None


def exists(path):
    """`os.path.lexists` for a local path, whether a file is there for a URL."""
    return os.path.lexists(path) if not is_url(path) else isfile(path)


def glob(pattern):
    """The paths matching `pattern` (its literal part escaped by the caller), sorted."""
    if not is_url(pattern):
        import glob as local_glob  # pylint: disable=import-outside-toplevel
        return sorted(local_glob.glob(pattern))
    _, tf_errors = _gfile()
    try:
        return sorted(_call(pattern, lambda g: g.glob(pattern), missing=True))
    except tf_errors.NotFoundError:
        return []


def file_size(path, what="file"):
    """The size of the file at URL `path` -> int; CheckpointError if none or a folder."""
    info = _stat(path)
    if info is None:
        raise errors.CheckpointError(f"{path}: cannot read the {what} (no such file).")
    if info.is_directory:
        raise errors.CheckpointError(f"{path}: the {what} is a folder, not a file; give the "
                                     f"{what} itself.")
    return int(info.length)


def read_head(path, count, what="file"):
    """The first `count` bytes of the file at URL `path` (fewer if it is shorter) -> bytes."""
    return _read(path, 0, count, what)


def read_bytes(path, limit, what="file"):
    """The bytes of the file at URL `path` -> bytearray; CheckpointError if it has more than
    `limit` (its size is checked before reading, and the read stops one byte after it)."""
    size = file_size(path, what)
    if size > limit:
        raise errors.CheckpointError(
            f"{path}: the {what} has {size} bytes, more than any {what} ({limit}); give the "
            f"{what} itself.")
    data = bytearray(_read(path, 0, limit + 1, what))
    if len(data) > limit:
        raise errors.CheckpointError(f"{path}: the {what} grows while it is read; give a "
                                     f"{what} that no other program writes.")
    return data


def _read(path, offset, count, what):
    def read(gfile):
        with gfile.GFile(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(count)

    _, tf_errors = _gfile()
    try:
        return _call(path, read, missing=True)
    except tf_errors.NotFoundError as exc:
        raise errors.CheckpointError(f"{path}: cannot read the {what} (no such file).") from exc


def write_text(path, text):
    """Writes `text` (UTF-8) as the file at URL `path`."""
    def write(gfile):
        with gfile.GFile(path, "wb") as handle:
            handle.write(text.encode("utf-8"))

    _call(path, write, doing="write")


def copy(source, target):
    """Copies the file `source` to `target`, either of them a URL or a local path (`target`
    must not exist)."""
    url = target if is_url(target) else source
    _call(url, lambda g: g.copy(source, target, overwrite=False),
          doing="write" if url == target else "read")


def rename(source, target):
    """Moves the file at URL `source` to `target`, replacing it (on object stores a copy and a
    delete: the object appears whole at `target`)."""
    _call(target, lambda g: g.rename(source, target, overwrite=True), doing="write")


def remove(path):
    """Removes the file at URL `path`; nothing if it is gone."""
    _, tf_errors = _gfile()
    try:
        _call(path, lambda g: g.remove(path), doing="remove", missing=True)
    except tf_errors.NotFoundError:
        pass


def rmtree(path):
    """Removes the folder at URL `path` and everything in it; errors are ignored (cleanup)."""
    _, tf_errors = _gfile()
    try:
        _call(path, lambda g: g.rmtree(path), doing="remove", missing=True)
    except (tf_errors.OpError, errors.CheckpointError):
        pass


def walk(top):
    """(folder, subfolders, files) of every folder under URL `top`, as os.walk."""
    return _call(top, lambda g: list(g.walk(top)))


def makedirs(path):
    """Creates the folder at URL `path` and its parents (object stores: nothing to do)."""
    _call(path, lambda g: g.makedirs(path), doing="write")


def real(path):
    """`os.path.realpath` for a local path; a URL as it is (no links on object stores)."""
    return path if is_url(path) else os.path.realpath(path)


class GFileSource:
    """A file at a URL read by byte range (`read(offset, size)`, `size`): bundle's index walk."""

    def __init__(self, path, what="file"):
        self.path = path
        self.size = file_size(path, what)
        self._handle = _call(path, lambda g: g.GFile(path, "rb"))

    def read(self, offset, size):
        self._handle.seek(offset)
        data = _call(self.path, lambda g: self._handle.read(size))
        if len(data) < size:
            raise OSError(0, "the file ends too soon")
        return data

    def close(self):
        self._handle.close()
