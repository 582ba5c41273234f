"""The pure core of the migrator: from a checkpoint's names, shapes and dtypes to a plan.

Nothing here reads or writes files or imports TensorFlow: a plan is data (`legacy_share.plans`)
that can be printed (dry run), tested, and executed by `legacy_share.writing`. Names come from
`legacy_share.renaming`, layer groups from `legacy_share.grouping`; this module decides what
happens to each group: merged from layer `share_from` up, kept per layer, or refused.
"""

import dataclasses

from legacy_share import generations
from legacy_share import names
from legacy_share import renaming
from legacy_share import seq2seq
from legacy_share.errors import PlanError
from legacy_share.tables import format_shape
# The plan's vocabulary is re-exported: the writer, the readers and tests import it from here.
from legacy_share.grouping import (LayerGroup, Rules, find_layer_groups, group, layer_index,
                                   migrated_name, migrated_tensors, normalize_specs)
from legacy_share.plans import (COPY, DUPLICATE, FLOAT_DTYPES, MERGE, RENAME, Drop, Plan, Step,
                                Strategy, TensorSpec)

__all__ = [
    "TensorSpec",
    "Strategy",
    "Step",
    "Drop",
    "Plan",
    "LayerGroup",
    "Route",
    "plan_migration",
    "plan_unshare",
    "unshare_size",
    "MAX_UNSHARED_TENSORS",
    "find_layer_groups",
    "migrated_name",
    "route",
    "check_share_from",
]

OPTIMIZER_SLOT_NAMES = renaming.OPTIMIZER_SLOT_NAMES
MOVING_AVERAGE_NAME = renaming.MOVING_AVERAGE_NAME
# The most tensors `plan_unshare` plans: a step costs about 350 bytes and 17 us before anything
# is written, so a million take ~350 MiB and ~20 s; no TF1 RNN stack has a million tensors.
MAX_UNSHARED_TENSORS = 1_000_000
_ITEM_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4, "float64": 8, "int8": 1, "uint8": 1,
               "int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "int64": 8, "uint64": 8,
               "bool": 1, "complex64": 8, "complex128": 16}


@dataclasses.dataclass(frozen=True)
class Route:
    """What `migrate` does with one layer group, and which option serves it otherwise.

    `merges_by_default`: its layers agree, so the default (`share_from=0`) merges them;
    `share_from`: the smallest K >= the asked one from which its layers agree (merging layers
    K and up works; the last layer when only it is left); `text`: one short line for tables.
    """

    merges_by_default: bool
    share_from: int
    text: str


def route(members, share_from=0, share=True):
    """The Route of a layer group.

    Args:
      members: (layer, shape, dtype) of each layer, in layer order.
      share_from: the first layer the user asks to merge (0: every layer).
      share: False when the user asks for no merging at all (`--no-share`).

    Returns:
      A Route.
    """
    members = [(layer, tuple(shape), dtype) for layer, shape, dtype in members]
    needed = _first_shareable(members, share_from)
    lowest = members[0][0]
    default = _first_shareable(members, 0) == lowest
    if not share:
        text = "kept per layer (--no-share)" + ("; merged by default" if default else "")
    elif default:
        text = "merged (default)"
    elif needed == members[-1][0]:
        text = "refused; --no-share keeps every layer"
    else:
        text = f"refused; --share-from {needed} or --no-share"
    return Route(default, needed, text)


def plan_migration(specs, strategy="first", group_patterns=(), renames=(), excludes=(),
                   drop_optimizer_state=False, tolerance=0.0, share=True, share_from=0,
                   notes=()):
    """Plans a migration of a checkpoint to today's names, its layers merged or kept.

    Args:
      specs: iterable of TensorSpec (or (name, shape, dtype) tuples) of the input.
      strategy: text for Strategy.parse or a Strategy: how merged layers become one tensor.
      group_patterns: regexes with one capture group for the layer index (e.g. `word_(\\d+)`),
        besides the built-in `Cell{i}` / `cell_{i}`. A name holding several layer indices is
        grouped by the last one a group pattern matches, else by its last `cell_{i}`.
      renames: (old_regex, new) pairs over whole path components, before the built-in renames.
      excludes: regexes; matching input names are copied untouched.
      drop_optimizer_state: optimizer slots (`<var>/Adam`, ... not moving averages) and scalar
        `*_power` globals become Drops, excluded ones too.
      tolerance: recorded for `strict`.
      share: False renames every tensor and keeps every layer (no MERGE step).
      share_from: layers below it keep their own renamed tensors; layers from it up are merged
        under layer `share_from`'s name (1: the names of
        `MultiRNNCell([GRUCell(n)] + [SharedGRUCell(n)] * (L - 1))`).
      notes: extra notes for the plan (e.g. read from the old graph).

    Returns:
      The Plan.

    Raises:
      PlanError: an option is invalid, two inputs collide, or layers that must be merged differ
        in shape or dtype (every such stack named in one message, with the options that work).
    """
    if isinstance(strategy, Strategy):
        if tolerance:
            strategy = dataclasses.replace(strategy, tolerance=float(tolerance))
    else:
        strategy = Strategy.parse(strategy, tolerance)
    share_from = _check_share_from(share, share_from)
    specs = normalize_specs(specs)
    rules = Rules(group_patterns, renames, excludes)
    object_key = generations.object_based_evidence(s.name for s in specs)
    if object_key is not None:
        return _plan_object_based(specs, object_key, strategy, share_from, notes, dict(
            rename=renames, group=group_patterns, drop_optimizer_state=drop_optimizer_state))

    dropped, kept = [], []
    for spec in specs:
        reason = renaming.optimizer_state(spec.name, spec.shape) if drop_optimizer_state else None
        if reason:
            dropped.append(Drop(spec.name, reason))
        else:
            kept.append(spec)
    tensors, naming = migrated_tensors(kept, rules)
    groups, singles = group(tensors, rules)

    steps, refused = {}, []
    for name in sorted(groups):
        if share_from != 0:  # some layers keep their own tensors: a per-layer stack
            _check_no_missing_layer(groups[name])
        merged, unmerged = _split(groups[name], share_from)
        singles.extend(unmerged)
        if len(merged) < 2:
            singles.extend(t for _, t in merged)
            continue
        problem = _merge_problem(merged, strategy)
        if problem:
            refused.append((name, groups[name], problem))
            continue
        _add_step(steps, _merge_step(groups[name].name_of(share_from), merged, strategy))
    if refused:
        message, tensor = _refusal(refused, share_from)
        raise PlanError(message, tensor=tensor)
    for tensor in singles:
        action = COPY if tensor.sources == (tensor.name,) else RENAME
        _add_step(steps, Step(tensor.name, tensor.shape, tensor.dtype, action, tensor.sources,
                              (), tensor.shards))
    return Plan(tuple(steps[name] for name in sorted(steps)),
                tuple(sorted(dropped, key=lambda d: d.name)), strategy,
                share_from, tuple(_block_cell_notes(kept)) + tuple(seq2seq.plan_notes(steps))
                + tuple(generations.tf0_rnn_notes(naming.stacks))
                + tuple(notes))


def plan_unshare(specs, layers, group_patterns=(), share_from=0):
    """Plans the inverse of a migration: layer `share_from`'s tensors copied to every layer above.

    Args:
      specs: iterable of TensorSpec of a shared checkpoint.
      layers: the number of layers to write (layers 0 .. layers - 1).
      group_patterns: as in plan_migration; a component whose index is `share_from` is unshared.
      share_from: the layer the shared tensors are named for; layers below it are copied.

    Returns:
      The Plan (COPY and DUPLICATE steps, strategy None).

    Raises:
      PlanError: `layers` is not an integer > share_from, a tensor has a layer above
        `share_from` (the checkpoint is per-layer), or no tensor has layer `share_from`.
    """
    unshare_size(specs, layers, group_patterns, share_from)
    rules = Rules(group_patterns, (), ())
    steps, unshared = {}, 0
    specs = normalize_specs(specs)
    object_key = generations.object_based_evidence(s.name for s in specs)
    if object_key is not None:
        raise PlanError(f"{generations.OBJECT_BASED_NOTE.format(key=object_key)}; unshare "
                        f"reads a TF1 checkpoint written by migrate, so there is nothing to "
                        f"unshare", tensor=object_key)
    for spec in specs:
        index = layer_index(spec.name.split("/"), rules.group_patterns)
        if index is not None and index.layer > share_from:
            raise PlanError(
                f"{spec.name} has layer {index.layer}: the checkpoint is already per-layer; "
                f"unshare reads a shared checkpoint, which holds layers up to {share_from} "
                f"(--share-from {share_from}) only")
        _add_step(steps, Step(spec.name, spec.shape, spec.dtype, COPY, (spec.name,)))
        if index is None or index.layer != share_from:
            continue
        unshared += 1
        for layer in range(share_from + 1, layers):
            comps = spec.name.split("/")
            comps[index.position] = index.component(layer)
            _add_step(steps, Step("/".join(comps), spec.shape, spec.dtype, DUPLICATE,
                                  (spec.name,)))
    if not unshared:
        raise PlanError(
            f"no tensor has a layer-{share_from} scope ({names.layer_scope(share_from)} or a "
            f"--group pattern), so there is nothing to unshare; if the names are older than TF "
            f"1.2 (Cell0, cell_0/gru_cell/gates/weights), migrate the checkpoint first")
    return Plan(tuple(steps[name] for name in sorted(steps)), (), None, share_from)


# ---------------------------------------------------------------------------- internals


def unshare_size(specs, layers, group_patterns=(), share_from=0):
    """(tensors, bytes) `plan_unshare` would write, in closed form, before any step is made.

    Bytes count the tensors' values only (strings as 0): a lower bound of the files' size.
    Raises:
      PlanError: `layers` is not an integer > share_from, or more than MAX_UNSHARED_TENSORS
        tensors would be written.
    """
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
        raise PlanError(f"layers must be an integer >= 1, got {layers!r}")
    share_from = _check_share_from(True, share_from)
    if layers <= share_from:
        raise PlanError(f"layers must be more than share_from ({share_from}), got {layers}")
    patterns = Rules(group_patterns, (), ()).group_patterns
    tensors = total = shared = 0
    for spec in normalize_specs(specs):
        index = layer_index(spec.name.split("/"), patterns)
        copies = 1
        if index is not None and index.layer == share_from:
            shared += 1
            copies += max(layers - share_from - 1, 0)
        size = _ITEM_BYTES.get(spec.dtype, 0)
        for dim in spec.shape:
            size *= dim
        tensors, total = tensors + copies, total + copies * size
    if tensors > MAX_UNSHARED_TENSORS:
        raise PlanError(
            f"--layers {layers} would write {tensors:,} tensors (the {shared} of layer "
            f"{share_from} copied to every layer above it); at most {MAX_UNSHARED_TENSORS:,} "
            f"are written (each costs memory before anything is written): give the number of "
            f"layers the graph has")
    return tensors, total


def _check_share_from(share, share_from):
    return check_share_from(share_from) if share else None


def check_share_from(share_from):
    """`share_from` if it is an integer >= 0 (a layer index), else PlanError."""
    if isinstance(share_from, bool) or not isinstance(share_from, int) or share_from < 0:
        raise PlanError(f"share_from must be an integer >= 0, got {share_from!r}")
    return share_from


def _plan_object_based(specs, object_key, strategy, share_from, notes, options):
    """Every tensor of an object-based checkpoint COPYied: TF1 rules never touch its keys.

    An option that would change a key (its object graph still names the old one) is refused.
    """
    asked = [f"--{name.replace('_', '-')}" for name, value in options.items()
             if value not in (None, False, (), [], {})]
    if asked:
        raise PlanError(f"{generations.OBJECT_BASED_NOTE.format(key=object_key)}; "
                        f"{', '.join(asked)} would change what its object graph names, leave "
                        f"{'it' if len(asked) == 1 else 'them'} out", tensor=object_key)
    steps = tuple(Step(s.name, s.shape, s.dtype, COPY, (s.name,))
                  for s in sorted(specs, key=lambda s: s.name))
    note = generations.OBJECT_BASED_NOTE.format(key=object_key)
    return Plan(steps, (), strategy, share_from, (note,) + tuple(notes))


def _check_no_missing_layer(grouped):
    """PlanError when a layer between the group's lowest and highest stored layers is missing:
    no graph creates a per-layer stack that skips one (`cell_0`, `cell_2` and no `cell_1`)."""
    layers = [layer for layer, _ in grouped.members]
    missing = sorted(set(range(layers[0], layers[-1] + 1)) - set(layers))
    if missing:
        first = grouped.members[0][1].sources[0]
        raise PlanError(
            f"{grouped.name_of(missing[0])} is missing: the checkpoint stores layers "
            f"{', '.join(map(str, layers))} of {grouped.name_of(layers[0])} (from {first}), and "
            f"a per-layer stack cannot skip a layer; check that the checkpoint is complete, or "
            f"leave those layers out with --exclude", tensor=first)


def _split(grouped, share_from):
    """(members merged: layer >= share_from, Tensors kept per layer); nothing merged without sharing."""
    if share_from is None:
        return [], [t for _, t in grouped.members]
    merged = [(layer, t) for layer, t in grouped.members if layer >= share_from]
    return merged, [t for layer, t in grouped.members if layer < share_from]


def _first_shareable(members, share_from):
    """The smallest layer >= share_from from which all members agree in shape and dtype."""
    candidates = [m for m in members if m[0] >= share_from] or members[-1:]
    for start in range(len(candidates)):
        if len({(shape, dtype) for _, shape, dtype in candidates[start:]}) == 1:
            return candidates[start][0]
    return candidates[-1][0]


def _merge_problem(merged, strategy):
    """Why layers `merged` cannot become one tensor by `strategy` (a refusal), or None."""
    if strategy.kind == "layer":
        return None
    if len({(t.shape, t.dtype) for _, t in merged}) > 1:
        return "shapes"
    return None


def _refusal(refused, share_from):
    """(One line naming every stack that cannot share, one variable each, and what works;
    the input name of the first stack's first layer of that variable)."""
    stacks = {}
    for name, grouped, _ in refused:
        comps = name.split("/")
        stack = "/".join(comps[:grouped.position])
        is_variable = renaming.variable_length(comps) == len(comps)
        best = stacks.get(stack)
        if best is None or (is_variable and not best[0]):
            stacks[stack] = (is_variable, name, grouped)
    described, needed, first_source = [], share_from or 0, None
    for stack in sorted(stacks):
        _, name, grouped = stacks[stack]
        members = [(layer, t.shape, t.dtype) for layer, t in grouped.members]
        kinds = {}
        for layer, shape, dtype in members:
            kinds.setdefault((shape, dtype), []).append(layer)
        shapes = "; ".join(
            f"layer{'s' if len(ls) > 1 else ''} {', '.join(map(str, ls))}: "
            f"{format_shape(shape)} {dtype}" for (shape, dtype), ls in kinds.items())
        needed = max(needed, _first_shareable(members, share_from or 0))
        source = grouped.members[0][1].sources[0]
        described.append(f"{name} (from {source} and its other layers; {shapes})")
        if first_source is None:
            first_source = source
    count = len(described)
    head = (f"cannot share the layers of {count} stack{'s' if count > 1 else ''}"
            + (f" from layer {share_from}" if share_from else "") + ": " + "; ".join(described))
    ways = []
    merges_left = any(g.members[-1][0] > needed for _, _, g in stacks.values())
    if needed > (share_from or 0) and merges_left:
        below = "layer 0 keeps" if needed == 1 else f"layers 0-{needed - 1} keep"
        ways.append(f"--share-from {needed} ({below} its own weights, the layers above share "
                    f"one set)")
    ways.append("--no-share (every layer keeps its own weights, renamed)")
    return f"{head}; use {' or '.join(ways)}", first_source


def _add_step(steps, step):
    if step.name in steps:
        raise PlanError(f"{steps[step.name].sources[0]} and {step.sources[0]} would both be "
                        f"written as {step.name}; rename one with --rename or leave one out "
                        f"with --exclude")
    steps[step.name] = step


def _merge_step(name, members, strategy):
    layers = tuple(layer for layer, _ in members)
    tensors = [t for _, t in members]
    if len({t.shards for t in tensors}) > 1:
        counts = ", ".join(f"layer {l}: {t.shards}" for l, t in members)
        raise PlanError(f"the layers of {name} have different shard counts ({counts}); "
                        f"keep them per layer with --no-share")
    if strategy.kind == "layer":
        chosen = dict(members).get(strategy.layer)
        if chosen is None:
            raise PlanError(f"strategy layer:{strategy.layer} needs layer {strategy.layer} but "
                            f"{name} merges layers {', '.join(map(str, layers))}; choose K among "
                            f"them, or keep every layer with --no-share")
        shape, dtype = chosen.shape, chosen.dtype
    else:
        shape, dtype = tensors[0].shape, tensors[0].dtype
        if strategy.kind == "mean" and dtype not in FLOAT_DTYPES:
            raise PlanError(f"strategy mean cannot average the {dtype} tensors of {name}; use "
                            f"--strategy first or layer:K, or --no-share")
    sources = tuple(source for t in tensors for source in t.sources)
    return Step(name, shape, dtype, MERGE, sources, layers, tensors[0].shards)


_BLOCK_NOTES = {
    "LSTMBlockCell": (
        "{scope} is a contrib LSTMBlockCell (TF 0.11 - 0.12): it clipped the cell state at "
        "+-3 (cell_clip=3.0) and added forget_bias (default 1.0) at run time, and it always "
        "saved the peephole weights wci/wcf/wco, used or not; none of this is in the "
        "checkpoint: build LSTMCell(n, cell_clip=3.0, forget_bias=...) and use_peepholes=True "
        "only if the old graph used them (--meta GRAPH.meta reads them); export with "
        "--custom-cells --cell-clip 3"),
    "lstm_block_wrapper": (
        "{scope} is a contrib LSTMBlockFusedCell (TF <= 1.4): up to TF 1.3 it clipped the cell "
        "state at +-3 by default, and its forget_bias (default 1.0) is added at run time; "
        "neither is in the checkpoint: build LSTMCell(n, cell_clip=3.0, forget_bias=...) if "
        "the old graph did (--meta GRAPH.meta reads them), and export with --custom-cells "
        "--cell-clip 3"),
    "lstm_fused_cell": (
        "{scope} is a contrib LSTMBlockFusedCell (TF >= 1.6): its forget_bias (default 1.0) "
        "and cell_clip (default none) are set at run time and not in the checkpoint: build "
        "LSTMCell(n, forget_bias=...) as the old graph did (--meta GRAPH.meta reads them)"),
}


def _block_cell_notes(specs):
    """Notes for the contrib block-cell scopes among `specs` (input names), one per scope."""
    seen = {}
    for spec in specs:
        comps = spec.name.split("/")
        for i, comp in enumerate(comps[:renaming.variable_length(comps) - 1]):
            if comp in _BLOCK_NOTES:
                seen.setdefault("/".join(comps[:i + 1]), comp)
    return [_BLOCK_NOTES[kind].format(scope=scope) for scope, kind in sorted(seen.items())]
