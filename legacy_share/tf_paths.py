"""Paths handed to TensorFlow, which reads some of them as glob patterns.

TensorFlow's checkpoint reader tells V1 from V2 by matching `PREFIX.index` as a pattern, and
its V1 reader opens every file matching PREFIX: `ck[12]/model.ckpt` reads `ck1/model.ckpt`.
Its file system takes `*`, `?`, `[` and `\\` as pattern characters (`kGlobbingChars` in
tensorflow/core/platform/file_system_helper.cc) and offers no escape every reader honours,
so a path holding one is refused before it reaches TensorFlow, input or output.
"""

import os

from legacy_share import errors

__all__ = ["PATTERN_CHARACTERS", "given_path", "check_literal"]


def given_path(path, what):
    """`path` (str, bytes or os.PathLike) as a str with `~` expanded; ArgumentError naming
    `what` ("checkpoint", "output") for anything else (None, a number)."""
    try:
        return os.path.expanduser(os.fspath(path))
    except TypeError:
        raise errors.ArgumentError(f"the {what} must be a path (str or os.PathLike), got "
                                   f"{path!r}") from None

PATTERN_CHARACTERS = "*?[\\"


def check_literal(path, what):
    """Raises CheckpointError (OutputError for an output) naming `path` if TensorFlow would
    read it as a file-name pattern.

    Args:
      path: the path exactly as it will be given to TensorFlow (str).
      what: what it is, for the message ("input checkpoint", "output").
    """
    found = sorted({c for c in path if c in PATTERN_CHARACTERS})
    if found:
        shown = " ".join(repr(c) for c in found)
        error = errors.OutputError if what == "output" else errors.CheckpointError
        raise error(
            f"{path}: the {what} path holds {shown}, which TensorFlow reads as a file-name "
            f"pattern (it could read or write another checkpoint: ck[12]/model.ckpt matches "
            f"ck1/model.ckpt); rename it, or give a link to it, without * ? [ or \\.")
