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
