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

# Legacy cell scope -> today's cell scope. The contrib block cells compute a core cell's
# equations (docs/keras.md, "Contrib block cells"), so they take its names:
# GRUBlockCell (TF <= 1.4) -> GRUCell; LSTMBlockCell (TF 0.11 - 0.12) and LSTMBlockFusedCell
# (`lstm_block_wrapper` TF <= 1.4, `lstm_fused_cell` TF >= 1.6) -> LSTMCell.
LEGACY_CELL_SCOPES = {
    "GRUCell": GRU_SCOPE,
    "BasicLSTMCell": BASIC_LSTM_SCOPE,
    "LSTMCell": LSTM_SCOPE,
    "BasicRNNCell": BASIC_RNN_SCOPE,
    "GRUBlockCell": GRU_SCOPE,
    "LSTMBlockCell": LSTM_SCOPE,
    "lstm_block_wrapper": LSTM_SCOPE,
    "lstm_fused_cell": LSTM_SCOPE,
}

# GRUBlockCell's kernels `w_ru` [d+n, 2n] and `w_c` [d+n, n] (for a day on TF's master branch,
# Dec 2017, the names were swapped): the planner tells them apart by their number of columns.
GRU_BLOCK_KERNELS = ("w_ru", "w_c")

# By today's cell scope: legacy variable path below the cell scope -> today's path (one of
# CELL_VARIABLES). `{}` stands for a shard index: the shards of one variable are concatenated
# on axis 0 in index order.
LEGACY_CELL_VARIABLES = {
    GRU_SCOPE: {
        "Gates/Linear/Matrix": f"{GRU_GATES}/{KERNEL}",
        "Gates/Linear/Bias": f"{GRU_GATES}/{BIAS}",
        "Candidate/Linear/Matrix": f"{GRU_CANDIDATE}/{KERNEL}",
        "Candidate/Linear/Bias": f"{GRU_CANDIDATE}/{BIAS}",
        "b_ru": f"{GRU_GATES}/{BIAS}",
        "b_c": f"{GRU_CANDIDATE}/{BIAS}",
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
        "W": KERNEL,                      # LSTMBlockCell, TF 0.11 - 0.12
        "b": BIAS,
        "wci": LSTM_PEEPHOLES[1],
        "wcf": LSTM_PEEPHOLES[0],
        "wco": LSTM_PEEPHOLES[2],
    },
    BASIC_RNN_SCOPE: {
        "Linear/Matrix": KERNEL,
        "Linear/Bias": BIAS,
        "weights": KERNEL,
        "biases": BIAS,
    },
}

# Scopes that hold a `_linear` (TF <= 0.12 `Linear/Matrix`, `Linear/Bias`; TF 1.0 - 1.1
# `weights`, `biases`; TF >= 1.2 `kernel`, `bias`) and no cell: the RNN wrappers, legacy
# seq2seq's attention decoder, and the contrib cells of TF's checkpoint_convert table.
# Legacy scope name -> today's; a scope that kept its name maps to itself.
LEGACY_LINEAR_SCOPES = {
    "OutputProjectionWrapper": "output_projection_wrapper",
    "output_projection_wrapper": "output_projection_wrapper",
    "InputProjectionWrapper": "input_projection_wrapper",
    "input_projection_wrapper": "input_projection_wrapper",
    "AttentionCellWrapper": "attention_cell_wrapper",
    "attention_cell_wrapper": "attention_cell_wrapper",
    "attention_decoder": "attention_decoder",
    "layer_norm_basic_lstm_cell": "layer_norm_basic_lstm_cell",
    "ugrnn_cell": "ugrnn_cell",
    "nas_rnn": "nas_rnn",
    "intersection_rnn_cell": "intersection_rnn_cell",
    "phased_lstm_cell": "phased_lstm_cell",
}
# Below a linear scope: inner scopes by their legacy name -> today's (AttentionCellWrapper's
# were lowercased in TF 1.0; legacy seq2seq's `Attention_0`, `AttnOutputProjection` never were).
LEGACY_LINEAR_INNER_SCOPES = {
    "attention_cell_wrapper": {"Attention": "attention",
                               "AttnOutputProjection": "attn_output_projection"},
}
# Below a linear scope (or one of its inner scopes): legacy variable path -> today's.
LEGACY_LINEAR_VARIABLES = {
    "Linear/Matrix": KERNEL,
    "Linear/Bias": BIAS,
    "weights": KERNEL,
    "biases": BIAS,
    "recurrent_weights": "recurrent_kernel",  # NASCell
    "AttnW": "attn_w",                        # AttentionCellWrapper, TF <= 0.12
    "AttnV": "attn_v",
}
# TF <= 0.12 EmbeddingWrapper: `EmbeddingWrapper/embedding` -> `embedding_wrapper/embedding`.
LEGACY_WRAPPER_SCOPES = {"EmbeddingWrapper": "embedding_wrapper"}

__all__ += [
    "GRU_BLOCK_KERNELS",
    "LEGACY_LINEAR_SCOPES",
    "LEGACY_LINEAR_INNER_SCOPES",
    "LEGACY_LINEAR_VARIABLES",
    "LEGACY_WRAPPER_SCOPES",
    "LEGACY_RNN_SCOPE",
    "LEGACY_BIDIRECTIONAL_SCOPE",
    "LEGACY_DIRECTION_SCOPES",
    "LEGACY_MULTI_RNN_CELL_SCOPE",
    "LEGACY_LAYER_SCOPE_FORMAT",
    "LEGACY_CELL_SCOPES",
    "LEGACY_CELL_VARIABLES",
]
