"""legacy_share.keras: legacy TF1 RNN checkpoints as native Keras 3 (or tf_keras) models.

    import legacy_share.keras          # before tensorflow: this process gets Keras 3
    model = legacy_share.keras.build_model("old/model.ckpt-20")
    legacy_share.keras.export("old/model.ckpt-20", "model.keras")   # proven, atomic

Importing this module takes back the TF_USE_LEGACY_KERAS=1 that `import legacy_share` set
(never one the user set) while TensorFlow is not imported yet, so TensorFlow serves Keras 3;
it also registers LegacyLSTMCell with Keras 3 when Keras 3 is what this process serves, so
exported files holding it load. Mappings: docs/keras.md and the README.
"""

import sys as _sys

from legacy_share import _process

if "tensorflow" not in _sys.modules:  # before anything below imports it
    _process.release_legacy_keras()

# pylint: disable=wrong-import-position
from legacy_share.keras.weights import layer_weights

_LAZY = {"export": "exporting", "build_model": "exporting", "plan": "exporting",
         "ExportReport": "exporting", "ExportPlan": "structure", "Stack": "structure"}

__all__ = ["export", "build_model", "layer_weights", "plan", "ExportPlan", "ExportReport",
           "Stack", "custom_objects"]


def __getattr__(name):  # TensorFlow is imported on first use, not by loading a file on JAX
    if name not in _LAZY:
        raise AttributeError(f"module 'legacy_share.keras' has no attribute {name!r}")
    import importlib  # pylint: disable=import-outside-toplevel
    value = getattr(importlib.import_module(f"legacy_share.keras.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def custom_objects(flavour=3):
    """The classes a file exported with `custom_cells=True` needs, for `load_model`.

    Args:
      flavour: 3 (Keras 3) or 2 (tf_keras): the Keras that will load the file.
    Returns:
      {"LegacyLSTMCell": class, "legacy_share>LegacyLSTMCell": class}, to pass as
      `custom_objects` (Keras 3 also finds the class by its registered name).
    """
    from legacy_share.keras import custom, model  # pylint: disable=import-outside-toplevel
    cls = custom.cell_class(model.keras_module(flavour))
    return {"LegacyLSTMCell": cls, "legacy_share>LegacyLSTMCell": cls}


if _process.keras_in_use() == 3:
    custom_objects(3)
