"""The cell kinds this package knows: one record per kind, every other module looks it up.

A record says what a kind is in every place that needs it: its TF1 class and scope names (today's
and older generations'), its variables and their shapes, how its gate columns become a Keras
layer's, its shared class, its NumPy reference step, its cuDNN counterpart. Records hold data and
the names of classes and functions only: this module imports neither TensorFlow nor Keras (the
shared cells need tf_keras, the export Keras 3, in separate processes), and the `*_class()` /
`reference_step_function()` methods import what they name when called.

Adding a kind is one record here plus its tests (README, "Adding a cell kind").
"""

import dataclasses
import importlib
import types
from typing import Mapping, Optional, Tuple

__all__ = ["CellKind", "CudnnKind", "KINDS", "CUDNN_KINDS", "GRU", "BASIC_LSTM", "LSTM",
           "BASIC_RNN", "TF0", "TF0_TO_1_1", "UNTOLD", "legacy_scopes", "by_scope", "by_key",
           "cudnn_kind", "display_name", "keras_display"]

KERNEL = "kernel"
BIAS = "bias"
TF0, TF0_TO_1_1, UNTOLD = "TF <= 0.12", "TF <= 1.1", "untold"
PROJECTION = "projection/kernel"
PEEPHOLES = ("w_f_diag", "w_i_diag", "w_o_diag")


@dataclasses.dataclass(frozen=True, eq=False)
class CellKind:  # pylint: disable=too-many-instance-attributes
    """One TF1 RNN cell kind.

    Shapes are rules over `rows` (input depth + output size), `units` (num_units) and `output`
    (num_proj, else units): `("rows", "4*units")` is [depth + output, 4 * units].
    `keras_blocks`: the Keras layer's gate columns in its order, each `(scope, block, blocks)`:
    block `block` of `blocks` equal column blocks of `<scope>/kernel` and `<scope>/bias`
    (`scope` "" for the cell's own `kernel`, `bias`).
    """

    key: str                      # short name: testing builders' `cell=` ("gru", ...)
    tf1_class: str                # tf.compat.v1.nn.rnn_cell class; the plans' cell column
    scope: str                    # today's variable scope of the cell
    shapes: Mapping[str, Tuple[str, ...]]  # today's variable path below scope -> shape rule,
                                           # in creation order
    sizing_kernel: str            # the kernel [rows, G * units] sizes are read from
    optional: Tuple[str, ...] = ()         # variables a cell of this kind may lack
    projection: Optional[str] = None       # the variable [units, output], when present
    settings: Tuple[str, ...] = ()         # run-time settings no checkpoint stores
    state_pair: bool = False               # state is (c, h), not h
    legacy_scopes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # older names of the cell scope -> which TensorFlow wrote them: TF0 (TF <= 0.12), TF0_TO_1_1
    # (TF 0.x and contrib up to TF 1.1) or UNTOLD (a name that does not tell its generation)
    legacy_variables: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # legacy path below the cell scope -> today's (`{}`: a shard index, shards concatenated
    # on axis 0 in index order)
    shared_class: Optional[str] = None     # its class in legacy_share.cells
    keras_layer: str = ""                  # keras.layers class (and `<class>Cell`)
    keras_options: Mapping[str, object] = dataclasses.field(default_factory=dict)
    keras_display: str = ""                # the plans' Keras column
    keras_blocks: Tuple[Tuple[str, int, int], ...] = ()
    forget_gate: Optional[Tuple[str, int]] = None  # the (scope, block) forget_bias is added to
    custom_layer: Optional[str] = None     # legacy_share.keras.custom class for the optional parts
    reference_step: str = ""               # the legacy_share.reference step function
    reference_arguments: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for field in ("shapes", "legacy_scopes", "legacy_variables", "keras_options",
                      "reference_arguments"):
            object.__setattr__(self, field, types.MappingProxyType(dict(getattr(self, field))))

    @property
    def variables(self):
        """Today's variable paths below the scope, optional ones included, in creation order."""
        return tuple(self.shapes)

    def shape(self, variable, depth, units, output=None):
        """The shape of `variable` for input depth `depth`, `units`, output size `output`."""
        output = units if output is None else output
        sizes = dict(rows=depth + output, units=units, output=output)
        dims = []
        for rule in self.shapes[variable]:
            factor, _, symbol = rule.rpartition("*")
            dims.append((int(factor) if factor else 1) * sizes[symbol])
        return tuple(dims)

    def kernels(self):
        """((kernel, G), ...): the kernels [rows, G * units], the sizing kernel first."""
        others = [v for v, rule in self.shapes.items()
                  if rule[0] == "rows" and v != self.sizing_kernel]
        out = []
        for variable in [self.sizing_kernel] + others:
            factor, _, _ = self.shapes[variable][1].rpartition("*")
            out.append((variable, int(factor) if factor else 1))
        return tuple(out)

    def gates(self):
        """G: the sizing kernel's columns per unit."""
        return self.kernels()[0][1]

    def tf1_cell_class(self):
        """The tf.compat.v1.nn.rnn_cell class (imports TensorFlow with the legacy Keras)."""
        from legacy_share._tf import rnn_cell  # pylint: disable=import-outside-toplevel
        return getattr(rnn_cell, self.tf1_class)

    def shared_cell_class(self):
        """legacy_share.cells' shared class of this kind, or None (imports TensorFlow)."""
        if self.shared_class is None:
            return None
        return getattr(importlib.import_module("legacy_share.cells"), self.shared_class)

    def reference_step_function(self):
        """legacy_share.reference's step `(x, state, **arguments) -> output (, new state)`."""
        return getattr(importlib.import_module("legacy_share.reference"), self.reference_step)


@dataclasses.dataclass(frozen=True, eq=False)
class CudnnKind:
    """A cuDNN RNN mode as an export stack: `cell` is the Stack's cell name."""

    cell: str                     # "cudnn_lstm"
    mode: str                     # legacy_share.cudnn's mode: "lstm", "gru", "rnn_tanh", ...
    tf1_class: str                # tf.contrib.cudnn_rnn class: the plans' cell column
    keras_display: str            # the plans' Keras column
    activation: str = "tanh"
    tf1_scope: Optional[str] = None  # the TF1 cell it migrates to (None: no core cell computes it)


GRU = CellKind(
    key="gru", tf1_class="GRUCell", scope="gru_cell",
    shapes={"gates/kernel": ("rows", "2*units"), "gates/bias": ("2*units",),
            "candidate/kernel": ("rows", "units"), "candidate/bias": ("units",)},
    sizing_kernel="candidate/kernel",
    # GRUBlockCell (TF <= 1.4) computes GRUCell's equations (docs/keras.md).
    legacy_scopes={"GRUCell": TF0, "GRUBlockCell": UNTOLD},
    legacy_variables={
        "Gates/Linear/Matrix": "gates/kernel", "Gates/Linear/Bias": "gates/bias",
        "Candidate/Linear/Matrix": "candidate/kernel", "Candidate/Linear/Bias": "candidate/bias",
        "b_ru": "gates/bias", "b_c": "candidate/bias",
        "gates/weights": "gates/kernel", "gates/biases": "gates/bias",
        "candidate/weights": "candidate/kernel", "candidate/biases": "candidate/bias"},
    shared_class="SharedGRUCell",
    keras_layer="GRU", keras_display="GRU(reset_after=False)",
    keras_options=dict(activation="tanh", reset_after=False, recurrent_activation="sigmoid"),
    # TF1 gates [r | u] + candidate; Keras [z | r | h] with z = TF1's u.
    keras_blocks=(("gates", 1, 2), ("gates", 0, 2), ("candidate", 0, 1)),
    reference_step="gru_step",
    reference_arguments={"gates/kernel": "gates_kernel", "gates/bias": "gates_bias",
                         "candidate/kernel": "candidate_kernel",
                         "candidate/bias": "candidate_bias"},
)

_LSTM_KERAS = dict(
    keras_layer="LSTM", keras_display="LSTM",
    keras_options=dict(activation="tanh", recurrent_activation="sigmoid"),
    # TF1 columns [i | j | f | o]; Keras [i | f | c | o]; forget_bias folded into f's bias.
    keras_blocks=(("", 0, 4), ("", 2, 4), ("", 1, 4), ("", 3, 4)), forget_gate=("", 2),
)

BASIC_LSTM = CellKind(
    key="basic_lstm", tf1_class="BasicLSTMCell", scope="basic_lstm_cell",
    shapes={KERNEL: ("rows", "4*units"), BIAS: ("4*units",)},
    sizing_kernel=KERNEL, settings=("forget_bias",), state_pair=True,
    legacy_scopes={"BasicLSTMCell": TF0},
    legacy_variables={"Linear/Matrix": KERNEL, "Linear/Bias": BIAS,
                      "weights": KERNEL, "biases": BIAS},
    shared_class="SharedBasicLSTMCell", **_LSTM_KERAS,
    reference_step="basic_lstm_step",
    reference_arguments={KERNEL: "kernel", BIAS: "bias"},
)

LSTM = CellKind(
    key="lstm", tf1_class="LSTMCell", scope="lstm_cell",
    shapes={KERNEL: ("rows", "4*units"), BIAS: ("4*units",),
            **{p: ("units",) for p in PEEPHOLES}, PROJECTION: ("units", "output")},
    sizing_kernel=KERNEL, optional=PEEPHOLES + (PROJECTION,), projection=PROJECTION,
    settings=("forget_bias", "cell_clip", "proj_clip"), state_pair=True,
    # LSTMBlockCell (TF 0.11 - 0.12) and LSTMBlockFusedCell (`lstm_block_wrapper` TF <= 1.4,
    # `lstm_fused_cell` TF >= 1.6) compute LSTMCell's equations (docs/keras.md).
    legacy_scopes={"LSTMCell": TF0_TO_1_1, "LSTMBlockCell": TF0_TO_1_1,
                   "lstm_block_wrapper": UNTOLD, "lstm_fused_cell": UNTOLD},
    legacy_variables={
        "W_{}": KERNEL, "B": BIAS,
        "W_F_diag": PEEPHOLES[0], "W_I_diag": PEEPHOLES[1], "W_O_diag": PEEPHOLES[2],
        "W_P_{}": PROJECTION,
        "weights": KERNEL, "weights/part_{}": KERNEL, "biases": BIAS,
        "projection/weights": PROJECTION, "projection/weights/part_{}": PROJECTION,
        "W": KERNEL, "b": BIAS,           # LSTMBlockCell, TF 0.11 - 0.12
        "wci": PEEPHOLES[1], "wcf": PEEPHOLES[0], "wco": PEEPHOLES[2]},
    shared_class="SharedLSTMCell", **_LSTM_KERAS, custom_layer="LegacyLSTMCell",
    reference_step="lstm_step",
    reference_arguments={KERNEL: "kernel", BIAS: "bias", PEEPHOLES[0]: "w_f_diag",
                         PEEPHOLES[1]: "w_i_diag", PEEPHOLES[2]: "w_o_diag",
                         PROJECTION: "projection_kernel"},
)

BASIC_RNN = CellKind(
    key="basic_rnn", tf1_class="BasicRNNCell", scope="basic_rnn_cell",
    shapes={KERNEL: ("rows", "units"), BIAS: ("units",)},
    sizing_kernel=KERNEL,
    legacy_scopes={"BasicRNNCell": TF0},
    legacy_variables={"Linear/Matrix": KERNEL, "Linear/Bias": BIAS,
                      "weights": KERNEL, "biases": BIAS},
    shared_class="SharedBasicRNNCell",
    keras_layer="SimpleRNN", keras_display="SimpleRNN", keras_options=dict(activation="tanh"),
    keras_blocks=(("", 0, 1),),
    reference_step="basic_rnn_step",
    reference_arguments={KERNEL: "kernel", BIAS: "bias"},
)

KINDS = (GRU, BASIC_LSTM, LSTM, BASIC_RNN)

CUDNN_KINDS = (
    CudnnKind("cudnn_lstm", "lstm", "CudnnLSTM", "LSTM", tf1_scope=LSTM.scope),
    CudnnKind("cudnn_gru", "gru", "CudnnGRU", "GRU(reset_after=True)"),
    CudnnKind("cudnn_rnn_tanh", "rnn_tanh", "CudnnRNNTanh", "SimpleRNN",
              tf1_scope=BASIC_RNN.scope),
    CudnnKind("cudnn_rnn_relu", "rnn_relu", "CudnnRNNRelu", "SimpleRNN(relu)",
              activation="relu", tf1_scope=BASIC_RNN.scope),
)

_BY_SCOPE = {kind.scope: kind for kind in KINDS}
_BY_KEY = {kind.key: kind for kind in KINDS}
_CUDNN_BY_CELL = {kind.cell: kind for kind in CUDNN_KINDS}


def legacy_scopes(*written_by):
    """Older cell scope names of every kind that the TensorFlow versions `written_by` (TF0,
    TF0_TO_1_1, UNTOLD) wrote, e.g. `legacy_scopes(TF0)` -> ("GRUCell", "BasicLSTMCell", ...)."""
    return tuple(scope for kind in KINDS for scope, when in kind.legacy_scopes.items()
                 if when in written_by)


def by_scope(scope):
    """The CellKind whose today's scope is `scope` (`gru_cell`, ...); KeyError otherwise."""
    return _BY_SCOPE[scope]


def by_key(key):
    """The CellKind whose key is `key` (`gru`, ...); KeyError otherwise."""
    return _BY_KEY[key]


def cudnn_kind(cell):
    """The CudnnKind of Stack cell `cell` (`cudnn_lstm`, ...), or None for a TF1 cell."""
    return _CUDNN_BY_CELL.get(cell)


def display_name(cell):
    """The class name plans show for Stack cell `cell`: `GRUCell`, ..., `CudnnLSTM`, ..."""
    cudnn = cudnn_kind(cell)
    return cudnn.tf1_class if cudnn else by_scope(cell).tf1_class


def keras_display(cell):
    """The Keras layer plans show for Stack cell `cell`: `GRU(reset_after=False)`, ..."""
    cudnn = cudnn_kind(cell)
    return cudnn.keras_display if cudnn else by_scope(cell).keras_display

