"""TensorFlow for this package: `tf` and `tf1` for any Keras, `rnn_cell` only with the legacy cells.

Reading and writing checkpoints and TF1 graphs, sessions and Savers work whichever Keras
TensorFlow serves; `tf.compat.v1.nn.rnn_cell` needs tf_keras on TensorFlow >= 2.16, so only
`from legacy_share._tf import rnn_cell` (the shared cells) insists on it, with LegacyKerasError.
"""

import os

from legacy_share import _process
from legacy_share._process import LEGACY_KERAS_SWITCH as _SWITCH
from legacy_share.errors import LegacyKerasError

_SET_BEFORE_TENSORFLOW = _process.switch_set_before_tensorflow()

import tensorflow as tf  # pylint: disable=wrong-import-position

tf1 = tf.compat.v1

__all__ = ["tf", "tf1", "rnn_cell", "legacy_rnn_cell"]


def legacy_rnn_cell():
    """`tf.compat.v1.nn.rnn_cell`; LegacyKerasError, with what to do, when it cannot be served."""
    minor = _process.tensorflow_minor(tf.__version__)
    try:
        cells = tf1.nn.rnn_cell
        cells.GRUCell  # pylint: disable=pointless-statement  (fails here, not at first use)
        return cells
    except (AttributeError, ImportError) as exc:
        raise LegacyKerasError(_diagnose(tf.__version__, minor, exc)) from exc


def __getattr__(name):
    if name == "rnn_cell":
        value = legacy_rnn_cell()
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _diagnose(version, minor, exc):
    keras_pin = f"tf_keras=={minor[0]}.{minor[1]}.*"
    try:
        import tf_keras  # pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        return (f"TensorFlow {version} serves tf.compat.v1.nn.rnn_cell only from tf_keras, "
                f"which is not installed: run `pip install '{keras_pin}'`.")
    if not _process.legacy_keras_switched_on():
        return (f"TensorFlow {version} serves Keras 3 in this process ({_SWITCH} is "
                f"{os.environ.get(_SWITCH)!r}), so it cannot serve tf.compat.v1.nn.rnn_cell: "
                f"import legacy_share before tensorflow, or start Python with {_SWITCH}=1 in "
                f"the environment (a process using legacy_share.keras for Keras 3 cannot).")
    if not _SET_BEFORE_TENSORFLOW:
        return (f"TensorFlow {version} was imported and asked for Keras before legacy_share "
                f"could set {_SWITCH}=1: import legacy_share before tensorflow, or start "
                f"Python with {_SWITCH}=1 in the environment.")
    return (f"TensorFlow {version} cannot serve tf.compat.v1.nn.rnn_cell ({exc}): "
            f"install the matching `pip install '{keras_pin}'`.")
