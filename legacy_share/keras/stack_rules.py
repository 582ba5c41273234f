"""What a stack's names and shapes rule in or out (pure): sharing, numbered cells, missing
layers, and variables beside the cells that the export does not model.

A checkpoint stores variables, not the graph that ran them. These rules read only what the
names and shapes prove; what they cannot prove is refused with the reason.
"""

import re

from legacy_share import names
from legacy_share import planning
from legacy_share import renaming

__all__ = ["numbered_cell", "cell_path", "written_before_tf_1_2", "missing_layers",
           "numbered_reading", "unmodelled", "ATTENTION_SCOPES"]

# A cell called in a scope that already holds one of its kind gets `{cell}_{n}` (tf.layers'
# unique naming of `default_name`; TF >= 1.2, where cells are layers): e.g. cells called one
# after another by hand in one variable scope give `gru_cell`, `gru_cell_1`, `gru_cell_2`.
_NUMBERED_RE = re.compile(r"(%s)_([1-9]\d*)" % "|".join(map(re.escape, names.CELL_VARIABLES)))
# Cell variables as TF <= 1.1 named them (docs/naming.md): TF 0.x CamelCase cell scopes and
# `Linear/Matrix`, `W_0`, `B`; TF 1.0 - 1.1 `weights`, `biases`. MultiRNNCell gave every layer
# variables of its own then, so a stack so named is never one shared set.
_TF0_CELL_SCOPES = ("GRUCell", "BasicLSTMCell", "LSTMCell", "BasicRNNCell", "LSTMBlockCell")
_OLD_LEAF_RE = re.compile(r"Matrix|Bias|B|W(?:_P)?_\d+|W_[FIO]_diag|weights|biases")
# tf.contrib.seq2seq.AttentionWrapper (and its mechanisms): the layer it applies to the cell
# output, the mechanisms' score scopes, the memory layer a mechanism builds beside it.
ATTENTION_SCOPES = ("attention_layer", "memory_layer", "luong_attention", "bahdanau_attention",
                    "luong_monotonic_attention", "bahdanau_monotonic_attention")
_TRAINING_RE = re.compile(r"beta\d_power(?:_\d+)*|global_step")


def numbered_cell(comp):
    """`gru_cell_2` -> ("gru_cell", 2); `gru_cell` -> ("gru_cell", 0); anything else None."""
    if comp in names.CELL_VARIABLES:
        return comp, 0
    match = _NUMBERED_RE.fullmatch(comp)
    return (match.group(1), int(match.group(2))) if match else None


def cell_path(prefix, cell, number):
    """The scope of cell `number` of a numbered run: `prefix/gru_cell` or `prefix/gru_cell_2`."""
    return "/".join(list(prefix) + [cell if number == 0 else f"{cell}_{number}"])


def written_before_tf_1_2(sources):
    """True when an input name of the stack is a TF <= 1.1 cell variable name."""
    for source in sources:
        comps = source.split("/")
        if names.LEGACY_MULTI_RNN_CELL_SCOPE in comps[:-1]:
            return True
        for i, comp in enumerate(comps[:-1]):
            leaf = comps[-2] if re.fullmatch(r"part_\d+", comps[-1]) else comps[-1]
            if comp in _TF0_CELL_SCOPES or (comp in names.CELL_VARIABLES
                                           and _OLD_LEAF_RE.fullmatch(leaf)):
                return True
    return False


def missing_layers(stored):
    """The layer indices below the highest stored one that are not stored, ascending."""
    return sorted(set(range(max(stored) + 1)) - set(stored)) if stored else []


def numbered_reading(depths, output):
    """Why numbered cells with input `depths` and `output` units cannot be read as one stack in
    their numbering order, or "" when they can."""
    for layer in range(1, len(depths)):
        if depths[layer] != output:
            return (f"cell {layer} takes input depth {depths[layer]}, not the {output} the cell "
                    f"numbered before it gives, so the cells are not one stack in TensorFlow's "
                    f"numbering order")
    if len(depths) > 1 and depths[0] == output:
        return (f"every cell takes input depth {output}, so the checkpoint cannot tell a stack "
                f"(each cell on the one before) from cells reading one input side by side "
                f"(a hand-made forward / backward pair)")
    return ""


def unmodelled(cell_scopes, steps, used):
    """Why a stack is not the whole computation, or "": variables of the checkpoint that sit in
    the scope its cells were called in (or, for an attention wrapper, beside it).

    Args:
      cell_scopes: today's scope of each cell of the stack (`decoder/attention/multi_rnn_cell/
        cell_0/basic_lstm_cell`), its MultiRNNCell scope taken as part of the cell.
      steps: the migrator's plan steps (today's name -> input names).
      used: input names the export reads (the stack, --embedding, --dense).
    """
    owners = sorted({_owner(scope) for scope in cell_scopes} - {""})
    beside = sorted({owner.rsplit("/", 1)[0] for owner in owners if "/" in owner})
    found = []
    for step in steps:
        if set(step.sources) & used or _bookkeeping(step.name):
            continue
        comps = step.name.split("/")
        under = any(step.name.startswith(owner + "/") for owner in owners)
        attention = [c for c in comps[:-1] if c in ATTENTION_SCOPES]
        near = attention and any(step.name.startswith(scope + "/") for scope in beside)
        if under or near:
            found.append((not attention, step.name))
    if not found:
        return ""
    is_generic, first = min(found)
    if not is_generic:
        return (f"its cells run inside an AttentionWrapper (tf.contrib.seq2seq; {first}), "
                f"whose attention the export does not model: the stack alone is not the model")
    return (f"{first} sits in the scope its cells were called in, so a wrapper or custom cell "
            f"used it in every step, and the export does not model it: the stack alone is not "
            f"the model")


def _owner(cell_scope):
    """The scope a cell (or its MultiRNNCell) was called in: `decoder/attention`."""
    comps = cell_scope.split("/")[:-1]
    if len(comps) >= 2 and comps[-2] == names.MULTI_RNN_CELL_SCOPE \
            and re.fullmatch(names.LAYER_SCOPE_FORMAT.format(r"\d+"), comps[-1]):
        comps = comps[:-2]
    return "/".join(comps)


def _bookkeeping(name):
    """Optimizer slots, training counters and moving averages: never part of a computation."""
    comps = name.split("/")
    return (renaming.variable_length(comps) < len(comps) or bool(_TRAINING_RE.fullmatch(comps[-1]))
            or planning.MOVING_AVERAGE_NAME in comps)
