"""legacy_share: TF1-style weight sharing for RNN cells, and checkpoints that fit it.

Importing this package sets TF_USE_LEGACY_KERAS=1 (when unset), so that a TensorFlow imported
afterwards serves `tf.compat.v1.nn.rnn_cell` on TensorFlow >= 2.16. TensorFlow itself is
imported on first use of a name below that needs it (so `legacy-share` can silence it first).
Only the shared cells need the legacy cells: using them in a process whose TensorFlow cannot
serve them raises LegacyKerasError; the migrator works with either Keras, and
`legacy_share.keras` takes the switch back (when this package set it) to get Keras 3.
"""

import importlib as _importlib

from legacy_share.errors import ArgumentError
from legacy_share.errors import CheckpointError
from legacy_share.errors import DestinationExistsError
from legacy_share.errors import DifferentGraphError
from legacy_share.errors import Error
from legacy_share.errors import ExportError
from legacy_share.errors import IncompatibleDtypeError
from legacy_share.errors import IncompatibleShapeError
from legacy_share.errors import LayersDifferError
from legacy_share.errors import LegacyKerasError
from legacy_share.errors import NewVariableError
from legacy_share.errors import NotCalledError
from legacy_share.errors import OutputError
from legacy_share.errors import PlanError
from legacy_share.errors import ProofError
from legacy_share.errors import VerificationError
from legacy_share import names
from legacy_share import _process

__version__ = "0.1.0"

LEGACY_KERAS_SWITCH = _process.LEGACY_KERAS_SWITCH

_LAZY = {
    "SharedCell": "legacy_share.cells",
    "SharedGRUCell": "legacy_share.cells",
    "SharedLSTMCell": "legacy_share.cells",
    "SharedBasicLSTMCell": "legacy_share.cells",
    "SharedBasicRNNCell": "legacy_share.cells",
    "hierarchical_rnn": "legacy_share.nested",
    "Strategy": "legacy_share.planning",
    "Plan": "legacy_share.planning",
    "Inspection": "legacy_share.migration",
    "inspect_checkpoint": "legacy_share.migration",
    "plan_checkpoint": "legacy_share.migration",
    "migrate": "legacy_share.migration",
    "unshare": "legacy_share.migration",
    "VerifyReport": "legacy_share.verifying",
    "verify_checkpoint": "legacy_share.verifying",
    "restore_shared": "legacy_share.restoring",
    "assign_from_legacy_checkpoint_fn": "legacy_share.slim",
}

_LAZY_MODULES = {"cudnn": "legacy_share.cudnn"}  # cudnn.Layout: the `cudnn=` arguments

__all__ = [
    "Error", "LegacyKerasError", "NotCalledError", "IncompatibleShapeError",
    "IncompatibleDtypeError", "DifferentGraphError", "NewVariableError", "CheckpointError",
    "OutputError", "ArgumentError", "PlanError", "LayersDifferError", "DestinationExistsError",
    "VerificationError", "ExportError", "ProofError", "names", "prepare_tensorflow",
] + list(_LAZY) + list(_LAZY_MODULES)


def prepare_tensorflow(verbose=False, prog="legacy-share"):
    """Imports TensorFlow for a script that prints to a person, and returns it.

    Call it before anything imports TensorFlow: TensorFlow's start-up lines and deprecation
    warnings are dropped (shown if the import fails), Ctrl-C waits until the import is done,
    and the `legacy_share` logger prints to stderr as `<prog>: message` (INFO when `verbose`).
    The Keras it serves is the one this process asked for: the legacy cells after
    `import legacy_share`, Keras 3 after `import legacy_share.keras`.

    Returns:
      The `tensorflow` module (`tf.compat.v1` is the TF1 API the shared cells run in).
    Raises:
      KerasBackendError: Keras 3 cannot load the backend the environment names.
    """
    _process.prepare_tensorflow(verbose, prog=prog)
    return _importlib.import_module("tensorflow")


def __getattr__(name):
    if name in _LAZY_MODULES:
        return _importlib.import_module(_LAZY_MODULES[name])
    if name not in _LAZY:
        raise AttributeError(f"module 'legacy_share' has no attribute {name!r}")
    value = getattr(_importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(__all__) | {"__version__", "LEGACY_KERAS_SWITCH"})


_process.prefer_legacy_keras()
