"""The exception tree of legacy_share: callers catch `Error`."""

__all__ = [
    "Error",
    "LegacyKerasError",
    "KerasBackendError",
    "NotCalledError",
    "IncompatibleShapeError",
    "IncompatibleDtypeError",
    "DifferentGraphError",
    "NewVariableError",
    "CheckpointError",
    "OutputError",
    "ArgumentError",
    "PlanError",
    "LayoutUnknownError",
    "NameCheckError",
    "LayersDifferError",
    "DestinationExistsError",
    "VerificationError",
    "Interrupted",
    "ExportError",
    "ProofError",
    "first_line",
]


class Error(Exception):
    """Root of every error legacy_share raises on purpose.

    `file`: the file the error is about (a checkpoint, a .meta, an output), or None;
    `tensor`: the checkpoint tensor (or scope) it is about, or None. `--json` prints both.
    """

    def __init__(self, message="", tensor=None, file=None):
        super().__init__(message)
        self.tensor = tensor
        self.file = file


class LegacyKerasError(Error, ImportError):
    """TensorFlow cannot serve `tf.compat.v1.nn.rnn_cell` in this process."""


class KerasBackendError(Error, ImportError):
    """Keras 3 cannot import the backend the environment names (KERAS_BACKEND, keras.json)."""


class NotCalledError(Error, ValueError):
    """A shared cell was asked for state it only has after its first call."""


class IncompatibleShapeError(Error, ValueError):
    """Tensors that must be shared have shapes that cannot be shared."""


class IncompatibleDtypeError(Error, TypeError):
    """A tensor has a dtype the operation cannot take (its shape may be fine)."""


class DifferentGraphError(Error, ValueError):
    """A shared cell was called in a graph other than the one that holds its variables.

    Its variables live in the graph of its first call; make one cell per graph.
    """


class NewVariableError(Error, ValueError):
    """A shared cell tried to create a variable on a call after its first.

    Only the first call creates variables; later calls may only reuse them.
    """


class CheckpointError(Error):
    """An input (a checkpoint, its state file, a .meta) cannot be found, read or trusted."""


class OutputError(Error):
    """The output cannot be written where asked: its name, its folder, free space, a failed
    write or move. Nothing half-written is left at the destination."""


class ArgumentError(Error, ValueError, TypeError):
    """An argument of a public function is not one it takes (the message names it and what
    would fit). Also a ValueError and a TypeError, for callers that caught those before."""


class PlanError(Error, ValueError):
    """The requested migration cannot be planned from these names and options.

    `tensor`: the input tensor the error is about (None when it is about an option);
    `file`: the checkpoint being planned for (None from the pure planner).
    """


class LayoutUnknownError(PlanError):
    """A cuDNN buffer's layout cannot be told from the checkpoint, a graph or flags."""


class NameCheckError(PlanError):
    """The names and shapes planned for a stack are not the variables today's TensorFlow
    creates in the graph that restores it (or that graph could not be built to check)."""


class LayersDifferError(Error):
    """`strict` merging met layers whose values differ beyond the tolerance."""


class DestinationExistsError(OutputError):
    """The output checkpoint exists and `force` was not given."""


class VerificationError(Error):
    """A written or restored checkpoint does not hold what it should."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM arrived: raised by the command line's handler, and cleaned up after like Ctrl-C.

    A KeyboardInterrupt, not an `Error`, so that `except Error` never swallows it.
    """

    def __init__(self, signal_number):
        super().__init__(signal_number)
        self.signal_number = signal_number


class ExportError(Error, ValueError):
    """A checkpoint cannot become the Keras model asked for (cell, stack shape, options).

    `tensor`: the input tensor the error is about, when there is one; `file`: the checkpoint.
    """


class ProofError(Error):
    """An exported model's outputs differ from the TF1 equations beyond the tolerance."""


def first_line(exc):
    """The first line of an exception's message (a TF error's `message`), or its type's name."""
    message = getattr(exc, "message", None) or str(exc)
    return message.strip().splitlines()[0] if message.strip() else type(exc).__name__
