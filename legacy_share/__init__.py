"""legacy_share: TF1-style weight sharing for RNN cells, and checkpoints that fit it.

Importing this package sets TF_USE_LEGACY_KERAS=1 (when unset) before TensorFlow is
imported, so that `tf.compat.v1.nn.rnn_cell` keeps working on TensorFlow >= 2.16.
"""

from legacy_share.errors import CheckpointError
from legacy_share.errors import DestinationExistsError
from legacy_share.errors import Error
from legacy_share.errors import IncompatibleShapeError
from legacy_share.errors import LayersDifferError
from legacy_share.errors import LegacyKerasError
from legacy_share.errors import NotCalledError
from legacy_share.errors import PlanError
from legacy_share.errors import VerificationError
from legacy_share.cells import SharedCell
from legacy_share.cells import SharedGRUCell
from legacy_share.cells import SharedLSTMCell
from legacy_share.cells import SharedBasicLSTMCell
from legacy_share.cells import SharedBasicRNNCell
from legacy_share import names

__version__ = "0.1.0"
