"""Variable-name pieces of TensorFlow RNN graphs: the contract between cells and migrator.

The shared cells create their variables where layer 0 of the equivalent unshared graph has
them today; the migrator renames every older generation to these names and merges layers
onto layer 0. Both import the constants below, so they cannot drift apart.
"""

__all__ = [
    "RNN_SCOPE",
    "MULTI_RNN_CELL_SCOPE",
    "LAYER_SCOPE_FORMAT",
    "SHARED_LAYER",
    "KERNEL",
    "BIAS",
    "GRU_SCOPE",
    "GRU_GATES",
    "GRU_CANDIDATE",
    "CELL_VARIABLES",
    "layer_scope",
    "shared_variable_names",
]

RNN_SCOPE = "rnn"
MULTI_RNN_CELL_SCOPE = "multi_rnn_cell"
LAYER_SCOPE_FORMAT = "cell_{}"
SHARED_LAYER = 0
BIDIRECTIONAL_SCOPE = "bidirectional_rnn"
FORWARD_SCOPE = "fw"
BACKWARD_SCOPE = "bw"

KERNEL = "kernel"
BIAS = "bias"

GRU_SCOPE = "gru_cell"
GRU_GATES = "gates"
GRU_CANDIDATE = "candidate"
BASIC_LSTM_SCOPE = "basic_lstm_cell"
LSTM_SCOPE = "lstm_cell"
LSTM_PROJECTION = "projection"
LSTM_PEEPHOLES = ("w_f_diag", "w_i_diag", "w_o_diag")
BASIC_RNN_SCOPE = "basic_rnn_cell"

# Variables each cell creates below its own scope, by cell scope (today's names).
CELL_VARIABLES = {
    GRU_SCOPE: (
        f"{GRU_GATES}/{KERNEL}",
        f"{GRU_GATES}/{BIAS}",
        f"{GRU_CANDIDATE}/{KERNEL}",
        f"{GRU_CANDIDATE}/{BIAS}",
    ),
    BASIC_LSTM_SCOPE: (KERNEL, BIAS),
    LSTM_SCOPE: (KERNEL, BIAS) + LSTM_PEEPHOLES + (f"{LSTM_PROJECTION}/{KERNEL}",),
    BASIC_RNN_SCOPE: (KERNEL, BIAS),
}


def layer_scope(layer):
    """`cell_{layer}`: the scope MultiRNNCell gives layer `layer`."""
    return LAYER_SCOPE_FORMAT.format(layer)


def shared_variable_names(cell_scope=GRU_SCOPE, outer=(RNN_SCOPE, MULTI_RNN_CELL_SCOPE)):
    """Names a shared stack creates: layer 0's, e.g. `rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel`.

    LSTMCell's optional pieces (peepholes, projection) are included; a cell without them
    creates a subset.
    """
    prefix = "/".join(tuple(outer) + (layer_scope(SHARED_LAYER), cell_scope))
    return [f"{prefix}/{suffix}" for suffix in CELL_VARIABLES[cell_scope]]


# Older generations of the names above (TF <= 0.12 and TF 1.0 - 1.1, docs/naming.md), for the
# migrator. Scopes are renamed as whole path components, cell variables only below a cell scope.
LEGACY_RNN_SCOPE = "RNN"                      # -> RNN_SCOPE
LEGACY_BIDIRECTIONAL_SCOPE = "BiRNN"          # -> BIDIRECTIONAL_SCOPE
LEGACY_DIRECTION_SCOPES = {"FW": FORWARD_SCOPE, "BW": BACKWARD_SCOPE}  # below BiRNN only
LEGACY_MULTI_RNN_CELL_SCOPE = "MultiRNNCell"  # -> MULTI_RNN_CELL_SCOPE
LEGACY_LAYER_SCOPE_FORMAT = "Cell{}"          # below MultiRNNCell only -> LAYER_SCOPE_FORMAT

# Legacy cell scope -> today's cell scope.
LEGACY_CELL_SCOPES = {
    "GRUCell": GRU_SCOPE,
    "BasicLSTMCell": BASIC_LSTM_SCOPE,
    "LSTMCell": LSTM_SCOPE,
    "BasicRNNCell": BASIC_RNN_SCOPE,
}

# By today's cell scope: legacy variable path below the cell scope -> today's path (one of
# CELL_VARIABLES). `{}` stands for a shard index: the shards of one variable are concatenated
# on axis 0 in index order.
LEGACY_CELL_VARIABLES = {
    GRU_SCOPE: {
        "Gates/Linear/Matrix": f"{GRU_GATES}/{KERNEL}",
        "Gates/Linear/Bias": f"{GRU_GATES}/{BIAS}",
        "Candidate/Linear/Matrix": f"{GRU_CANDIDATE}/{KERNEL}",
        "Candidate/Linear/Bias": f"{GRU_CANDIDATE}/{BIAS}",
        "gates/weights": f"{GRU_GATES}/{KERNEL}",
        "gates/biases": f"{GRU_GATES}/{BIAS}",
        "candidate/weights": f"{GRU_CANDIDATE}/{KERNEL}",
        "candidate/biases": f"{GRU_CANDIDATE}/{BIAS}",
    },
    BASIC_LSTM_SCOPE: {
        "Linear/Matrix": KERNEL,
        "Linear/Bias": BIAS,
        "weights": KERNEL,
        "biases": BIAS,
    },
    LSTM_SCOPE: {
        "W_{}": KERNEL,
        "B": BIAS,
        "W_F_diag": LSTM_PEEPHOLES[0],
        "W_I_diag": LSTM_PEEPHOLES[1],
        "W_O_diag": LSTM_PEEPHOLES[2],
        "W_P_{}": f"{LSTM_PROJECTION}/{KERNEL}",
        "weights": KERNEL,
        "weights/part_{}": KERNEL,
        "biases": BIAS,
        "projection/weights": f"{LSTM_PROJECTION}/{KERNEL}",
        "projection/weights/part_{}": f"{LSTM_PROJECTION}/{KERNEL}",
    },
    BASIC_RNN_SCOPE: {
        "Linear/Matrix": KERNEL,
        "Linear/Bias": BIAS,
        "weights": KERNEL,
        "biases": BIAS,
    },
}

__all__ += [
    "LEGACY_RNN_SCOPE",
    "LEGACY_BIDIRECTIONAL_SCOPE",
    "LEGACY_DIRECTION_SCOPES",
    "LEGACY_MULTI_RNN_CELL_SCOPE",
    "LEGACY_LAYER_SCOPE_FORMAT",
    "LEGACY_CELL_SCOPES",
    "LEGACY_CELL_VARIABLES",
]
