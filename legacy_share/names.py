"""Variable-name pieces of TensorFlow RNN graphs: the contract between cells and migrator.

The shared cells create their variables where layer 0 of the equivalent unshared graph has
them today; the migrator renames every older generation to these names and merges layers
onto layer 0. Both import the constants below, so they cannot drift apart.
"""

from legacy_share import cell_kinds

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

KERNEL = cell_kinds.KERNEL
BIAS = cell_kinds.BIAS

GRU_SCOPE = cell_kinds.GRU.scope
GRU_GATES = "gates"
GRU_CANDIDATE = "candidate"
BASIC_LSTM_SCOPE = cell_kinds.BASIC_LSTM.scope
LSTM_SCOPE = cell_kinds.LSTM.scope
LSTM_PROJECTION = "projection"
LSTM_PEEPHOLES = cell_kinds.PEEPHOLES
BASIC_RNN_SCOPE = cell_kinds.BASIC_RNN.scope

# Variables each cell creates below its own scope, by cell scope (today's names).
CELL_VARIABLES = {kind.scope: kind.variables for kind in cell_kinds.KINDS}


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

# Legacy cell scope -> today's cell scope (each kind's `legacy_scopes`, legacy_share.cell_kinds).
LEGACY_CELL_SCOPES = {legacy: kind.scope for kind in cell_kinds.KINDS
                      for legacy in kind.legacy_scopes}

# GRUBlockCell's kernels `w_ru` [d+n, 2n] and `w_c` [d+n, n] (for a day on TF's master branch,
# Dec 2017, the names were swapped): the planner tells them apart by their number of columns.
GRU_BLOCK_KERNELS = ("w_ru", "w_c")

# By today's cell scope: legacy variable path below the cell scope -> today's path (one of
# CELL_VARIABLES). `{}` stands for a shard index: the shards of one variable are concatenated
# on axis 0 in index order.
LEGACY_CELL_VARIABLES = {kind.scope: dict(kind.legacy_variables) for kind in cell_kinds.KINDS}

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
