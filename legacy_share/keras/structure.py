"""The export plan: which RNN stacks a checkpoint holds and which Keras layers each becomes (pure).

It reads the migrator's plan (today's names, layer groups with their per-layer sources), so every
naming generation the migrator reads is read here too, with no second renaming table.
"""

import dataclasses
import math
from typing import Dict, Optional, Tuple

from legacy_share import cell_kinds
from legacy_share import names
from legacy_share import planning
from legacy_share import renaming
from legacy_share.errors import ExportError
from legacy_share.reports import JsonReport
from legacy_share.keras import chains
from legacy_share.keras import stack_rules
from legacy_share.keras.cell_status import CUSTOM, EXACT, REFUSED, cell_status, takes_clips
from legacy_share.keras import weights as _weights
from legacy_share.tables import format_columns, format_shape

__all__ = ["Stack", "Extra", "ExportPlan", "plan_export"]

FORWARD, BIDIRECTIONAL, STACKED_BIDIRECTIONAL = "forward", "bidirectional", "stacked_bidirectional"
_LAYER_RE = renaming.LAYER_SCOPE_RE
_SLOT = "optimizer slot"
_NUMBERED = stack_rules.NUMBERED
_NEEDS_LAYERS = ("a shared stack: one set of weights run K times, and K is stored nowhere in a "
                 "shared checkpoint; give it with --layers K (layers=K)")
_SLOT_RE = renaming.SLOT_RE


@dataclasses.dataclass(frozen=True)
class Stack:
    """One RNN stack of the checkpoint and its Keras form.

    `sources[(direction, layer)][variable]`: the input tensor names (shards in order) of one
    cell, `direction` "" / "fw" / "bw", `layer` its stored index; `layers` the number of layers
    run (None: a shared stack whose K was not given); `depths[i]` the input depth of layer i.
    A cuDNN model is a Stack too, `cell` one of `cell_kinds.CUDNN_KINDS` (its sources are
    described in legacy_share.keras.cudnn_stacks).
    """

    scope: str
    cell: str
    topology: str
    layers: Optional[int]
    shared: bool
    units: int
    output: int
    depths: Tuple[int, ...]
    sources: Dict[Tuple[str, int], Dict[str, Tuple[str, ...]]]
    extras: Tuple[str, ...]
    status: str
    reason: str = ""
    forget_bias: float = 1.0
    origin: str = ""  # a cuDNN stack: where its layout came from
    cell_clip: Optional[float] = None  # LSTMCell's run-time clips (LegacyLSTMCell applies them)
    proj_clip: Optional[float] = None

    @property
    def directions(self):
        return 1 if self.topology == FORWARD else 2

    @property
    def stored_layers(self):
        return sorted({layer for _, layer in self.sources})

    def cell_sources(self, direction, layer_position):
        """The variables of the cell run as layer `layer_position` (0-based) in `direction`."""
        stored = self.stored_layers
        return self.sources[(direction, stored[0 if self.shared else layer_position])]

    def keras_layer(self):
        """The Keras layer(s) this stack becomes, as text for the plan."""
        cell = (cell_kinds.by_scope(self.cell).custom_layer if self.status == CUSTOM
                else cell_kinds.keras_display(self.cell))
        count = "K" if self.layers is None else self.layers
        if self.topology == BIDIRECTIONAL and (self.layers or 1) > 1:
            return f"Bidirectional(RNN(StackedRNNCells([{cell} cell] * {count})))"
        if self.topology != FORWARD:
            cell = f"Bidirectional({cell})"
        if self.shared:
            return f"one {cell} called {count} times"
        return cell if count == 1 else f"{count} x {cell}"

    def settings(self):
        """Settings the checkpoint does not store, which the export assumes (TF1's defaults)."""
        cudnn = cell_kinds.cudnn_kind(self.cell)
        if cudnn:
            return [f"activation {cudnn.activation}", "linear_input mode",
                    f"layout from the {self.origin}"]
        out = ["activation tanh"]
        settings = cell_kinds.by_scope(self.cell).settings
        if "forget_bias" in settings:
            out.insert(0, f"forget_bias {self.forget_bias:g}")
        if "cell_clip" in settings:
            if self.cell_clip is None and self.proj_clip is None:
                out.append("no cell_clip / proj_clip")
            else:
                out += [f"cell_clip {self.cell_clip:g}" if self.cell_clip is not None
                        else "no cell_clip",
                        f"proj_clip {self.proj_clip:g}" if self.proj_clip is not None
                        else "no proj_clip"]
        return out

    def to_dict(self):
        return dict(scope=self.scope, cell=cell_kinds.display_name(self.cell),
                    layers=self.layers, shared=self.shared, units=self.units, output=self.output,
                    input_depth=self.depths[0], directions=self.directions,
                    topology=self.topology, keras_layer=self.keras_layer(), status=self.status,
                    reason=self.reason, extras=list(self.extras), assumed=self.settings())


@dataclasses.dataclass(frozen=True)
class Extra:
    """A layer around the stack: `kind` "embedding" or "dense", its tensors and their shapes."""

    kind: str
    sources: Tuple[Tuple[str, ...], ...]
    shapes: Tuple[Tuple[int, ...], ...]


@dataclasses.dataclass(frozen=True)
class ExportPlan(JsonReport):
    """What an export writes: the `stack` exported (of all `stacks`), extras, tensors left out,
    and the migrator's `notes` on what the checkpoint cannot say (block cells' clipping)."""

    prefix: str
    stacks: Tuple[Stack, ...]
    stack: Optional[Stack]
    embedding: Optional[Extra]
    dense: Optional[Extra]
    not_exported: Tuple[Tuple[str, str], ...]
    notes: Tuple[str, ...] = ()
    dtype: str = "float32"  # what the Keras model computes in (checks.model_dtype)
    stored_dtype: str = "float32"  # the dtype of the exported tensors in the checkpoint
    after: Tuple[Stack, ...] = ()  # the stacks `stack` feeds, in data-flow order (keras.chains)
    order: str = ""  # how that order was found (--stack, the shapes)

    @property
    def chain(self):
        """Every stack exported, in data-flow order: `stack`, then `after`."""
        return () if self.stack is None else (self.stack,) + tuple(self.after)

    def refusal(self):
        """Why the export of this plan is refused (one line), or None: the one decision the
        dry run and the real run both take."""
        for stack in self.chain:
            if stack.status == REFUSED:
                return f"{self.prefix}: {stack.scope}: {stack.reason}"
            if stack.layers is None:  # a cuDNN plan says it here
                return f"{self.prefix}: {stack.scope}: {_NEEDS_LAYERS}"
        return None

    def to_dict(self):
        return dict(
            checkpoint=self.prefix, stacks=[s.to_dict() for s in self.stacks],
            exported=None if self.stack is None else self.stack.scope,
            embedding=None if self.embedding is None else list(self.embedding.sources[0]),
            dense=None if self.dense is None else [s[0] for s in self.dense.sources],
            not_exported=[dict(name=n, reason=r) for n, r in self.not_exported],
            notes=list(self.notes), refusal=self.refusal(), dtype=self.dtype,
            stored_dtype=self.stored_dtype, chain=[s.scope for s in self.chain],
            order=self.order or None)

    def describe_dtype(self):
        """The plan's dtype line: what the model computes in, and an assumption if it is one."""
        if self.dtype == self.stored_dtype:
            return f"dtype: {self.dtype} (the checkpoint's weights and the Keras model)"
        return (f"dtype: {self.dtype}, assumed: the checkpoint's weights are "
                f"{self.stored_dtype}; the Keras model holds and computes them in {self.dtype}, "
                f"so it is proven against the TF1 equations in float64, not against a "
                f"{self.stored_dtype} graph")

    def format_table(self):
        """One row per stack, then the extras and the tensors not exported."""
        rows = [("stack", "cell", "layers", "units", "depth", "dirs", "shared", "keras",
                 "status", "assumed")]
        for s in self.stacks:
            status = s.status + (f": {s.reason}" if s.reason else "")
            if self.stack is not None and s not in self.chain:
                status = "not selected (--stack)"
            rows.append((s.scope, cell_kinds.display_name(s.cell),
                         "K?" if s.layers is None else s.layers,
                         s.units, s.depths[0], s.directions, "yes" if s.shared else "no",
                         s.keras_layer(), status, ", ".join(s.settings())))
        lines = format_columns(rows)
        for extra in (self.embedding, self.dense):
            if extra is not None:
                tensors = ", ".join(f"{src[0]} {format_shape(shape)}"
                                    for src, shape in zip(extra.sources, extra.shapes))
                lines.append(f"{extra.kind}: {tensors}")
        if len(self.chain) > 1:
            lines.append(f"chain: {' -> '.join(chains.describe(s) for s in self.chain)} "
                         f"(order: {self.order}); assumed: {chains.ASSUMED}")
        if self.stack is not None:
            lines.append(self.describe_dtype())
        slots = [name for name, reason in self.not_exported if reason == _SLOT]
        if slots:
            kinds = sorted({name.rsplit("/", 1)[-1] for name in slots})
            lines.append(f"not exported  {len(slots)} optimizer slots ({', '.join(kinds)})")
        for name, reason in self.not_exported:
            if reason != _SLOT:
                lines.append(f"not exported  {name}  ({reason})")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def plan_export(ckpt_prefix, specs, plan, stack=None, layers=None, custom_cells=False,
                forget_bias=1.0, embedding=None, dense=None, renames=(), cell_clip=None,
                proj_clip=None):
    """The ExportPlan of a checkpoint, from its specs and the migrator's plan of it.

    Args:
      ckpt_prefix: the checkpoint's prefix, for messages.
      specs: its TensorSpecs; plan: `planning.plan_migration` of them with a `layer:K` strategy
        (so layers of different shapes are still one group, with every layer's sources).
      stack: a scope prefix choosing one stack when there are several.
      layers: K for a shared stack (ignored by nothing: a per-layer stack refuses it).
      custom_cells: export LSTMCells with peepholes / projection with LegacyLSTMCell.
      forget_bias: folded into LSTM biases.
      cell_clip, proj_clip: the clips an LSTMCell stack ran with (None: none); they need
        `custom_cells` (no Keras layer clips) and proj_clip a projection.
      embedding: a tensor name (input or today's) used as an Embedding table before the stack.
      dense: (kernel, bias or None) names of a Dense layer after the stack.
      renames: the user renames the plan was made with.
    Returns:
      An ExportPlan; `stack` is None when nothing can be exported (see the stacks' reasons).
    Raises:
      ExportError: no stack, several and none chosen, or options that do not fit.
    """
    shape_of = {s.name: tuple(s.shape) for s in specs}
    found = _collect(plan, renames)
    if layers is not None and not any(entry["shared"] for entry in found.values()):
        per_layer = ", ".join(entry["scope"] for entry in found.values()) or "no stack"
        raise ExportError(f"{ckpt_prefix}: --layers {layers} is for a shared stack (one stored "
                          f"layer run K times); {per_layer} stores its layers itself")
    clips = (cell_clip, proj_clip)
    for name, clip in zip(("--cell-clip", "--proj-clip"), clips):
        if clip is not None and not (isinstance(clip, (int, float)) and 0 < clip < math.inf):
            raise ExportError(f"{ckpt_prefix}: {name} must be a number > 0 (the LSTMCell's "
                              f"clip), got {clip!r}")
    emb = _extra(ckpt_prefix, plan, shape_of, "embedding", [embedding]) if embedding else None
    den = _extra(ckpt_prefix, plan, shape_of, "dense", [d for d in dense if d]) if dense else None
    extras_used = {src for extra in (emb, den) if extra for srcs in extra.sources
                   for src in srcs}
    stacks = tuple(_whole(_stack(entry, shape_of, layers, custom_cells, forget_bias, clips),
                          entry, plan.steps, extras_used)
                   for _, entry in sorted(found.items()))
    chain, order = chains.order(ckpt_prefix, stacks, stack)
    unclipped = next((s for s in chain if not takes_clips(s.cell)), None)
    if clips != (None, None) and unclipped is not None:
        raise ExportError(f"{ckpt_prefix}: --cell-clip / --proj-clip are LSTMCell settings; "
                          f"{unclipped.scope} is a {cell_kinds.display_name(unclipped.cell)}, "
                          f"which does not clip; leave them out")
    used = set().union(*map(_sources_of, chain)) | extras_used
    _check_extras(ckpt_prefix, chain[0], emb, den, chain[-1])
    not_exported = []
    for step in plan.steps:
        for src in step.sources:
            if src not in used:
                not_exported.append((src, why_not(src, chain, stacks)))
    return ExportPlan(ckpt_prefix, stacks, chain[0], emb, den, tuple(sorted(not_exported)),
                      tuple(plan.notes), after=chain[1:], order=order)


def _sources_of(stack):
    return {src for cell in (stack.sources.values() if stack else ()) for srcs in cell.values()
            for src in srcs}


def _whole(stack, entry, steps, extras_used):
    """`stack`, refused when variables beside its cells take part in what they compute."""
    if stack.status == REFUSED:
        return stack
    why = stack_rules.unmodelled(entry["paths"].values(), steps, _sources_of(stack) | extras_used,
                                 (stack.depths[0], stack.output * stack.directions))
    return dataclasses.replace(stack, status=REFUSED, reason=why) if why else stack


def _collect(plan, renames):
    """Cell variables of the plan grouped by stack: {key: entry}."""
    found = {}
    for step in plan.steps:
        comps = step.name.split("/")
        at = _cell_position(comps)
        if at is None:
            continue
        cell, number = stack_rules.numbered_cell(comps[at])
        prefix = comps[:at]
        direction_at = chains.direction_position(prefix)
        merged = step.action == planning.MERGE
        if merged:
            layer_at = _differing_position(step, renames)
            layer_of = list(step.layers)
            per_layer = step.layer_sources()
        else:
            layer_at = next((j for j in reversed(range(len(prefix)))
                             if _LAYER_RE.fullmatch(prefix[j])), None)
            layer_of = [int(_LAYER_RE.fullmatch(prefix[layer_at]).group(1))
                        if layer_at is not None else number]
            per_layer = [step.sources]
        key_comps = list(prefix)
        if layer_at is not None and layer_at < at:
            key_comps[layer_at] = names.layer_scope("*")
        direction = ""
        if direction_at is not None:
            direction = chains.DIRECTIONS[prefix[direction_at]]
            key_comps[direction_at] = "{fw,bw}"
        numbered = not merged and layer_at is None  # cells TensorFlow numbered: layer = number
        odd = number > 0 and not numbered  # `cell_0/gru_cell_1`: no known graph wires these
        key = "/".join(key_comps + [comps[at] if odd else cell + (_NUMBERED if numbered else "")])
        entry = found.setdefault(key, dict(scope=key, cell=cell, cells={}, paths={},
                                           shared=False, layer_at=layer_at, odd=odd,
                                           direction_at=direction_at, numbered=numbered))
        entry["shared"] = entry["shared"] or (not merged and layer_at is not None)
        variable = "/".join(comps[at + 1:])
        for layer, sources in zip(layer_of, per_layer):
            entry["cells"].setdefault((direction, layer), {})[variable] = tuple(sources)
            entry["paths"][(direction, layer)] = (
                stack_rules.cell_path(prefix, cell, layer) if numbered
                else "/".join(key_comps + [cell]).replace("{fw,bw}", direction).replace(
                    names.layer_scope("*"), names.layer_scope(layer)))
    for entry in found.values():
        if entry["numbered"] and {layer for _, layer in entry["cells"]} == {0}:
            entry["numbered"] = False  # no cell numbered: a plain cell (per direction)
            entry["scope"] = entry["scope"][:-len(_NUMBERED)]
    return {entry["scope"]: entry for entry in found.values()}


def _cell_position(comps):
    for i, comp in enumerate(comps[:-1]):
        cell = stack_rules.numbered_cell(comp)
        if cell and "/".join(comps[i + 1:]) in names.CELL_VARIABLES[cell[0]]:
            return i
    return None


def _differing_position(step, renames):
    """The path component holding a MERGE step's layer index (where its layers' names differ)."""
    name = step.name.split("/")
    other = planning.migrated_name(step.layer_sources()[1][0], renames).split("/")
    diffs = [i for i, (a, b) in enumerate(zip(name, other)) if a != b]
    return diffs[0] if len(diffs) == 1 and len(name) == len(other) else None


def _stack(entry, shape_of, layers, custom_cells, forget_bias, clips=(None, None)):
    cell, cells, scope = entry["cell"], entry["cells"], entry["scope"]
    directions = sorted({d for d, _ in cells}, key=lambda d: ("", "fw", "bw").index(d))
    topology = FORWARD
    if directions != [""]:
        below = entry["layer_at"] is None or entry["layer_at"] > entry["direction_at"]
        topology = BIDIRECTIONAL if below else STACKED_BIDIRECTIONAL
    stored = sorted({layer for _, layer in cells})
    sizes = {}
    for key, variables in sorted(cells.items()):
        shapes = {v: _whole_shape(srcs, shape_of) for v, srcs in variables.items()}
        sizes[key] = _weights.cell_sizes(cell, shapes, entry["paths"][key])
    depth0, units, output = sizes[min(sizes)]
    extras = tuple(sorted({v for variables in cells.values() for v in variables
                           if v in cell_kinds.by_scope(cell).optional}))
    width = 2 if topology == STACKED_BIDIRECTIONAL else 1
    depths = [sizes[(directions[0], layer)][0] for layer in stored]
    shared, one_layer = entry["shared"], ""
    if shared and stored == [0]:
        sources = [src for variables in cells.values() for srcs in variables.values()
                   for src in srcs]
        one_layer = stack_rules.one_layer(sources, depth0, output * width)
        shared = shared and not (one_layer and layers is None)  # then it is what it is: 1 layer
    status, reason = cell_status(cell, cells, extras, custom_cells, clips)
    layout = stack_rules.layout_refusal(entry, directions, sizes, depths, output * width,
                                        shared and topology == BIDIRECTIONAL, layers, one_layer,
                                        shared)
    if layout:
        status, reason = REFUSED, layout
    elif shared and layers is None and status != REFUSED:
        status, reason = REFUSED, _NEEDS_LAYERS
    count = len(stored) if not shared else layers
    lstm = takes_clips(cell)
    return Stack(scope, cell, topology, count, shared, units, output, tuple(depths), cells,
                 extras, status, reason, float(forget_bias),
                 cell_clip=clips[0] if lstm else None, proj_clip=clips[1] if lstm else None)


def _whole_shape(sources, shape_of):
    shapes = [shape_of[s] for s in sources]
    return (sum(s[0] for s in shapes),) + shapes[0][1:]


def choose_stack(prefix, stacks, wanted):
    """The one stack to export of `stacks` (no chain): the only one, or the one under scope
    `wanted` (chains.order's checks and messages)."""
    if wanted or len(stacks) < 2:
        return chains.order(prefix, stacks, wanted)[0][0]
    raise ExportError(f"{prefix}: holds {len(stacks)} RNN stacks "
                      f"({', '.join(s.scope for s in stacks)}); choose one with --stack SCOPE")


def _extra(prefix, plan, shape_of, kind, wanted):
    sources, shapes = [], []
    for name in wanted:
        step = next((s for s in plan.steps if s.name == name or name in s.sources), None)
        if step is None:
            raise ExportError(f"{prefix}: no tensor named {name} for --{kind}; see "
                              f"`legacy-share inspect {prefix}` for the names")
        sources.append(step.layer_sources()[0])
        shapes.append(_whole_shape(step.layer_sources()[0], shape_of))
    return Extra(kind, tuple(sources), tuple(shapes))


def _check_extras(prefix, stack, embedding, dense, last=None):
    """The embedding's width is `stack`'s input depth; the Dense takes `last`'s output."""
    if embedding is not None:
        shape = embedding.shapes[0]
        if len(shape) != 2 or shape[1] != stack.depths[0]:
            raise ExportError(
                f"{prefix}: --embedding {embedding.sources[0][0]} has shape "
                f"{format_shape(shape)} but {stack.scope} takes input depth {stack.depths[0]}; "
                f"an embedding table is [vocabulary, {stack.depths[0]}]")
    if dense is not None:
        stack = last or stack
        kernel = dense.shapes[0]
        top = stack.output * stack.directions
        if len(kernel) != 2 or kernel[0] != top:
            raise ExportError(f"{prefix}: --dense kernel {dense.sources[0][0]} has shape "
                              f"{format_shape(kernel)} but {stack.scope} outputs depth {top}; "
                              f"a Dense kernel is [{top}, units]")
        if len(dense.shapes) > 1 and dense.shapes[1] != (kernel[1],):
            raise ExportError(f"{prefix}: --dense bias {dense.sources[1][0]} has shape "
                              f"{format_shape(dense.shapes[1])}; the kernel "
                              f"{format_shape(kernel)} needs [{kernel[1]}]")


def why_not(name, chosen, stacks):
    """Why tensor `name` is not exported with stack `chosen` (or the stacks of a chain), in a
    few words."""
    chosen = chosen if isinstance(chosen, tuple) else (chosen,)
    comps = name.split("/")
    if len(comps) > 1 and _SLOT_RE.fullmatch(comps[-1]):
        return _SLOT
    if renaming.TRAINING_COUNTER_RE.fullmatch(comps[-1]):
        return "training state"
    if planning.MOVING_AVERAGE_NAME in comps:
        return "moving average"
    for stack in stacks:
        if stack not in chosen and any(name in srcs for cell in stack.sources.values()
                                       for srcs in cell.values()):
            return f"another stack: {stack.scope}"
    return "not part of the model (see --embedding, --dense)"
