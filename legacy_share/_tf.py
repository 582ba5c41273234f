"""Imports TensorFlow so that `tf.compat.v1.nn.rnn_cell` is served (TF 2.12 - 2.21)."""

import os
import sys

from legacy_share import LEGACY_KERAS_SWITCH as _SWITCH
from legacy_share.errors import LegacyKerasError


def _import_tensorflow():
    tf_was_imported = "tensorflow" in sys.modules
    os.environ.setdefault(_SWITCH, "1")
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    minor = tuple(int(p) for p in tf.__version__.split(".")[:2])
    try:
        tf.compat.v1.nn.rnn_cell.GRUCell  # pylint: disable=pointless-statement
    except (AttributeError, ImportError) as exc:
        raise LegacyKerasError(_diagnose(tf.__version__, minor, tf_was_imported, exc)) from exc
    return tf


def _diagnose(version, minor, tf_was_imported, exc):
    keras_pin = f"tf_keras=={minor[0]}.{minor[1]}.*"
    try:
        import tf_keras  # pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        return (f"TensorFlow {version} serves tf.compat.v1.nn.rnn_cell only from tf_keras, "
                f"which is not installed: run `pip install '{keras_pin}'`.")
    if os.environ.get(_SWITCH) not in ("1", "true", "True"):
        return (f"{_SWITCH} is set to {os.environ[_SWITCH]!r}, so TensorFlow {version} cannot "
                f"serve tf.compat.v1.nn.rnn_cell: unset it or set {_SWITCH}=1.")
    if tf_was_imported:
        return (f"TensorFlow {version} was imported and asked for Keras before legacy_share "
                f"could set {_SWITCH}=1: import legacy_share before tensorflow, or start "
                f"Python with {_SWITCH}=1 in the environment.")
    return (f"TensorFlow {version} cannot serve tf.compat.v1.nn.rnn_cell ({exc}): "
            f"install the matching `pip install '{keras_pin}'`.")


tf = _import_tensorflow()
tf1 = tf.compat.v1
rnn_cell = tf1.nn.rnn_cell
