"""What a stack's names and shapes rule in or out (pure): sharing, numbered cells, missing
layers, and variables beside the cells that the export does not model.

A checkpoint stores variables, not the graph that ran them. These rules read only what the
names and shapes prove; what they cannot prove is refused with the reason.
"""

import re

from legacy_share import cell_kinds
from legacy_share import names
from legacy_share import planning
from legacy_share import renaming

__all__ = ["NUMBERED", "numbered_cell", "cell_path", "written_before_tf_1_2", "one_layer",
           "layout_refusal", "missing_layers", "numbered_reading", "unmodelled",
           "extras_flags", "ATTENTION_SCOPES"]

NUMBERED = "{,_1,...}"  # the scope of a stack of numbered cells: `enc/gru_cell{,_1,...}`

# A cell called in a scope that already holds one of its kind gets `{cell}_{n}` (tf.layers'
# unique naming of `default_name`; TF >= 1.2, where cells are layers): e.g. cells called one
# after another by hand in one variable scope give `gru_cell`, `gru_cell_1`, `gru_cell_2`.
_NUMBERED_RE = re.compile(r"(%s)_([1-9]\d*)" % "|".join(map(re.escape, names.CELL_VARIABLES)))
# Cell variables as TF <= 1.1 named them (docs/naming.md): TF 0.x CamelCase cell scopes and
# `Linear/Matrix`, `W_0`, `B`; TF 1.0 - 1.1 `weights`, `biases`. MultiRNNCell gave every layer
# variables of its own then, so a stack so named is never one shared set.
_TF0_CELL_SCOPES = cell_kinds.legacy_scopes(cell_kinds.TF0, cell_kinds.TF0_TO_1_1)
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


def one_layer(sources, depth, output):
    """Why a lone `cell_0` (input names `sources`) cannot be a shared layer run K times, or ""
    when it can be."""
    if written_before_tf_1_2(sources):
        return ("it has TF <= 1.1 names, and MultiRNNCell then gave every layer variables of its "
                "own, so it is a stack of one layer")
    if depth != output:
        return (f"a shared layer of input depth {depth} cannot take its own output of depth "
                f"{output}; export it with --layers 1")
    return ""


def layout_refusal(entry, directions, sizes, depths, below, shared_in_direction, layers,
                   lone_layer, shared):
    """Why the stored cells are not one stack the export can build, or "".

    entry: a stack as `structure` collects it (scope, cell, cells, paths, odd, numbered,
    direction_at); sizes: (direction, layer) -> (depth, units, output); depths: per stored
    layer; below: the depth a layer gives the next; lone_layer: `one_layer`'s answer.
    """
    cells = entry["cells"]
    stored = sorted({layer for _, layer in cells})
    if directions == [names.FORWARD_SCOPE]:
        return ("only the fw direction is stored, as when one set of cells is given as both "
                "directions (bidirectional_dynamic_rnn(cells, the same cells): bw then runs fw's "
                "weights); the export does not build that model (a Bidirectional whose backward "
                "layer carries the forward weights) and does not pass one direction off as the "
                "whole model")
    if directions not in ([""], [names.FORWARD_SCOPE, names.BACKWARD_SCOPE]):
        return f"only the {directions[-1]} direction is stored"
    if len({(u, o) for _, u, o in sizes.values()}) > 1:
        return "its cells have different numbers of units"
    if len({tuple(layer for d2, layer in cells if d2 == d) for d in directions}) > 1:
        return "fw and bw store different layers"
    if entry["odd"] or (entry["numbered"] and entry["direction_at"] is not None):
        return (f"{entry['paths'][min(cells)]}: cells TensorFlow numbered inside a layer or "
                f"direction scope; no graph the export knows wires them, so it cannot tell how")
    if shared and len(stored) > 1:
        return "some layers are merged and others not"
    if shared and stored != [0]:
        return f"only layer {stored[0]} is stored"
    if shared_in_direction:
        return "a shared stack inside one direction is not supported"
    if shared and lone_layer and (layers or 2) > 1:
        return lone_layer if "depth" in lone_layer else f"--layers {layers}: {lone_layer}"
    missing = missing_layers(stored)
    if missing and not shared:
        return (f"layer {missing[0]} ({_layer_path(entry, directions[0], missing[0])}) is "
                f"missing: the checkpoint stores layers {', '.join(map(str, stored))}, and a "
                f"stack cannot skip a layer; check that the checkpoint is complete")
    if entry["numbered"]:
        return numbered_reading(depths, sizes[min(sizes)][2])
    for position in range(1, len(stored)):
        if depths[position] != below:
            return (f"layer {stored[position]} takes input depth {depths[position]} but the "
                    f"layer below gives {below}")
    return ""


def _layer_path(entry, direction, layer):
    """Today's scope that layer `layer` of the stack would have."""
    if entry["numbered"]:
        prefix = entry["scope"][:-len(NUMBERED)].split("/")[:-1]
        return cell_path(prefix, entry["cell"], layer)
    return entry["scope"].replace("{fw,bw}", direction or names.FORWARD_SCOPE).replace(
        names.layer_scope("*"), names.layer_scope(layer))


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


def unmodelled(cell_scopes, steps, used, sizes=None):
    """Why a stack is not the whole computation, or "": variables of the checkpoint that sit in
    the scope its cells were called in (or, for an attention wrapper, beside it).

    Args:
      cell_scopes: today's scope of each cell of the stack (`decoder/attention/multi_rnn_cell/
        cell_0/basic_lstm_cell`), its MultiRNNCell scope taken as part of the cell.
      steps: the migrator's plan steps (today's name -> input names).
      used: input names the export reads (the stack, --embedding, --dense).
      sizes: (input depth of layer 0, output depth of the stack), to name the flags that take
        a variable shaped like an embedding table or an output projection.
    """
    owners = sorted({_owner(scope) for scope in cell_scopes} - {""})
    beside = sorted({owner.rsplit("/", 1)[0] for owner in owners if "/" in owner})
    found, unused = [], []
    for step in steps:
        if set(step.sources) & used or _bookkeeping(step.name):
            continue
        unused.append(step.name)
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
    why = (f"{first} sits in the scope its cells were called in: a wrapper or custom cell may "
           f"use it in every step, which the export does not model, so the stack alone is not "
           f"the model")
    shapes = {step.name: tuple(step.shape) for step in steps}
    flags = extras_flags([n for generic, n in found if generic], unused, shapes,
                         *(sizes or (0, 0)))
    if flags:
        why += (f"; if {' and '.join(role for _, role in flags)}, pass "
                f"{' '.join(flag for flag, _ in flags)}")
    return why


def extras_flags(candidates, unused, shapes, depth, output):
    """[(flag, role)] for the `candidates` shaped like an embedding table [vocabulary, depth]
    or an output projection ([output, n] kernel, n neither depth nor output, [n] bias beside
    it); a shape that fits both readings is named in neither. With no table among the candidates, a lone one among the
    `unused` names (anywhere in the checkpoint) is named.
    """
    flags = []
    for pool in (candidates, unused):
        tables = [n for n in pool if len(shapes[n]) == 2 and shapes[n][1] == depth
                  and shapes[n][0] != output]
        if tables:
            break
    if len(tables) == 1:
        flags.append((f"--embedding {tables[0]}",
                      f"{tables[0]} is the embedding table the cells read"))
    kernels = [n for n in candidates if len(shapes[n]) == 2 and shapes[n][0] == output
               and shapes[n][1] not in (depth, output)]  # square: an attention's, maybe
    biases = [n for kernel in kernels[:1] for n in candidates
              if shapes[n] == (shapes[kernel][1],) and _parent(n) == _parent(kernel)]
    if len(kernels) == 1 and len(biases) <= 1:
        dense = kernels + biases
        flags.append((f"--dense {','.join(dense)}",
                      f"{' and '.join(dense)} the output projection after them"))
    return flags


def _parent(name):
    return name.rsplit("/", 1)[0] if "/" in name else ""


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
