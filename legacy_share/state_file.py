"""The `checkpoint` state file Saver keeps in a checkpoint folder, read and written through
TensorFlow's own proto (CheckpointState, a text proto listing `model_checkpoint_path`).

Hostile input: a regular file only (not followed into a FIFO or device), its size checked
before it is read, a parse error one line naming the file.
"""

import os

from google.protobuf import text_format

from legacy_share import errors
from legacy_share import file_systems
from legacy_share import reading

__all__ = ["STATE_FILE", "STATE_LIMIT", "read_state", "state_text"]

STATE_FILE = "checkpoint"  # the state file Saver keeps in a checkpoint folder
STATE_LIMIT = 16 << 20  # Saver's state file lists at most max_to_keep prefixes: a few KiB


def _checkpoint_state():
    # Not exported under tf.*; its proto module is the one tf.train.get_checkpoint_state uses.
    from tensorflow.python.training import checkpoint_state_pb2  # pylint: disable=import-outside-toplevel,no-name-in-module
    return checkpoint_state_pb2.CheckpointState()


def read_state(folder):
    """The `checkpoint` state file of `folder` as written -> CheckpointState, or None if absent.

    Paths in it are as stored (relative ones are not joined to `folder`).
    Raises:
      CheckpointError: it is not a regular file, is larger than any state file, or does not
        parse.
    """
    path = os.path.join(folder, STATE_FILE)
    if not file_systems.exists(path):
        return None
    data = reading.read_input(path, STATE_LIMIT, "state file")
    state = _checkpoint_state()
    try:
        text_format.Merge(data.decode("utf-8"), state)
    except (UnicodeDecodeError, text_format.ParseError, RecursionError) as exc:
        raise errors.CheckpointError(
            f"{path}: unreadable state file ({errors.first_line(exc)}); give the checkpoint "
            f"prefix instead of the folder.") from exc
    return state


def state_text(name):
    """The text of a state file naming checkpoint `name` (a prefix's base name) alone, as
    Saver writes it: `model_checkpoint_path` and `all_model_checkpoint_paths`, quoted by the
    proto's own rules."""
    state = _checkpoint_state()
    state.model_checkpoint_path = name
    state.all_model_checkpoint_paths.append(name)
    return text_format.MessageToString(state, as_utf8=True)
