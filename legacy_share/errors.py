"""The exception tree of legacy_share: callers catch `Error`."""

__all__ = [
    "Error",
    "LegacyKerasError",
    "NotCalledError",
    "IncompatibleShapeError",
    "CheckpointError",
    "PlanError",
    "LayersDifferError",
    "DestinationExistsError",
    "VerificationError",
    "ExportError",
    "ProofError",
]


class Error(Exception):
    """Root of every error legacy_share raises on purpose."""


class LegacyKerasError(Error, ImportError):
    """TensorFlow cannot serve `tf.compat.v1.nn.rnn_cell` in this process."""


class NotCalledError(Error, ValueError):
    """A shared cell was asked for state it only has after its first call."""


class IncompatibleShapeError(Error, ValueError):
    """Tensors that must be shared have shapes that cannot be shared."""


class CheckpointError(Error):
    """A checkpoint cannot be found, read or trusted."""


class PlanError(Error, ValueError):
    """The requested migration cannot be planned from these names and options."""


class LayersDifferError(Error):
    """`strict` merging met layers whose values differ beyond the tolerance."""


class DestinationExistsError(Error):
    """The output checkpoint exists and `force` was not given."""


class VerificationError(Error):
    """A written or restored checkpoint does not hold what it should."""


class ExportError(Error, ValueError):
    """A checkpoint cannot become the Keras model asked for (cell, stack shape, options)."""


class ProofError(Error):
    """An exported model's outputs differ from the TF1 equations beyond the tolerance."""
