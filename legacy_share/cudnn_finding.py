"""cuDNN models among a checkpoint's names: buffers, canonical tensors, slots, layouts.

A cuDNN model is an opaque buffer (`cudnn_lstm/opaque_kernel`, or any 1-D tensor the user names)
and/or the canonical tensors TF 1.3-1.15 saved beside it (`.../cudnn_compatible_lstm_cell/...`).
TF's saveable names those `<scope>/rnn/multi_rnn_cell/cell_k/...` with `<scope>` the variable
scope in which the layer was built: the layer's own (`cudnn_lstm/rnn/...`) when it was called,
the one outside it (`rnn/...` beside `cudnn_lstm/opaque_kernel`) when build() was called by hand
(TF r1.15 contrib/cudnn_rnn/python/layers/cudnn_rnn.py, `_create_saveable`). Pure: names,
shapes and dtypes in, models out; nothing here reads a value.
"""

import dataclasses
from typing import Optional, Tuple

from legacy_share import cudnn
from legacy_share.errors import ArgumentError, LayoutUnknownError, PlanError
from legacy_share import names
from legacy_share.renaming import LAYER_SCOPE_RE, MOVING_AVERAGE_RE, SLOT_RE

__all__ = ["Model", "find_models", "canonical_position", "slot_suffix", "layer_path", "FLOATS"]

_BUFFER_LEAVES = ("opaque_kernel", "opaque_params")
_STACK_BIDIRECTIONAL_SCOPE = "stack_bidirectional_rnn"
_COMPATIBLE_CELLS = {"cudnn_compatible_lstm_cell": "lstm", "cudnn_compatible_gru_cell": "gru"}
FLOATS = ("float16", "bfloat16", "float32", "float64")


@dataclasses.dataclass(frozen=True)
class Model:
    """One cuDNN model: its `buffer` (None if only canonical tensors were saved), the `scope`
    its canonical and output names live under ('' at the root), its `layout`, where the layout
    came from (`source`), the `canonical` tensors found and the optimizer `slots` of the
    buffer (of the canonical tensors when there is no buffer)."""

    buffer: Optional[str]
    scope: str
    layout: cudnn.Layout
    source: str
    canonical: Tuple[str, ...] = ()
    slots: Tuple[str, ...] = ()


def find_models(specs, meta_layouts=(), given=None, buffer_name=None, prefix="checkpoint"):
    """The cuDNN models among `specs` (TensorSpecs) -> [Model], sorted by scope.

    The layout of a buffer comes from its canonical tensors (in the buffer's scope or, for a
    layer built by hand, the scope outside it), else from `meta_layouts` (dicts of Layout
    fields read from a graph, matched by size), else from `given` (a Layout from the command
    line). `buffer_name` names a buffer whose name is not recognisable.
    Raises LayoutUnknownError when a buffer's layout cannot be told, PlanError when it does
    not fit its length, or a buffer or canonical tensor is not what cuDNN saves.
    """
    if given is not None and not isinstance(given, cudnn.Layout):
        raise ArgumentError(f"cudnn must be a legacy_share.cudnn.Layout, got {given!r}")
    specs = {spec.name: spec for spec in specs}
    groups = _canonical_groups(specs, prefix)
    buffers = [name for name, spec in specs.items() if _is_buffer(name, spec)]
    if buffer_name is not None:
        if buffer_name not in specs:
            raise PlanError(f"{prefix}: no tensor {buffer_name!r} for --cudnn-buffer",
                            file=prefix)
        buffers = sorted(set(buffers) | {buffer_name})
    if given is not None and not buffers:
        buffers = [_buffer_by_length(specs, given, prefix)]
    for name in buffers:
        _check_buffer(specs[name], prefix)
    models = []
    for name, scope in _buffer_scopes(sorted(buffers), groups, prefix):
        spec = specs[name]
        group = groups.pop(scope, None)
        layout, source = _buffer_layout(name, spec, group, meta_layouts, given, prefix)
        models.append(Model(name, scope, layout, source,
                            tuple(sorted(group[1])) if group else (),
                            _slots(specs, [spec], prefix)))
    for scope, (layout, names_) in sorted(groups.items()):
        models.append(Model(None, scope, layout, "canonical tensors", tuple(sorted(names_)),
                            _slots(specs, [specs[n] for n in names_], prefix)))
    return sorted(models, key=lambda m: m.scope)


def _buffer_by_length(specs, given, prefix):
    """The one 1-D float tensor of `given.size` values, for flags that name no buffer."""
    found = [name for name, spec in specs.items()
             if spec.shape == (given.size,) and spec.dtype in FLOATS and not _is_slot(name)]
    if len(found) == 1:
        return found[0]
    lengths = sorted({(n, s.shape[0]) for n, s in specs.items() if len(s.shape) == 1
                      and s.dtype in FLOATS and not _is_slot(n)}, key=lambda p: -p[1])
    shown = ", ".join(f"{n} ({length})" for n, length in lengths[:3]) or "none"
    what = "several tensors" if found else "no tensor"
    raise PlanError(
        f"{prefix}: {what} of {given.size} values fit {given.describe()} (1-D float "
        f"tensors: {shown}); check the flags, or name the buffer with --cudnn-buffer",
        file=prefix)


def _check_buffer(spec, prefix):
    """A buffer is a 1-D float tensor: anything else is refused, naming it."""
    if len(spec.shape) != 1:
        what = "a scalar" if not spec.shape else f"of shape {list(spec.shape)}"
        raise PlanError(f"{prefix}: {spec.name} is {what}, but a cuDNN opaque buffer is 1-D; "
                        f"name the buffer itself with --cudnn-buffer", tensor=spec.name,
                        file=prefix)
    if spec.dtype not in FLOATS:
        raise PlanError(f"{prefix}: {spec.name} holds {spec.dtype}, but a cuDNN opaque buffer "
                        f"holds floats ({', '.join(FLOATS)}); name the buffer itself with "
                        f"--cudnn-buffer", tensor=spec.name, file=prefix)


def _slots(specs, owners, prefix):
    """The optimizer slots and moving averages of `owners` (specs): `[<scope>/]<owner>/<slot>`.

    An optimizer built in a variable scope puts it in front of the owner's name again
    (`model/model/cudnn_lstm/opaque_kernel/Adam`).
    """
    by_name = {owner.name: owner for owner in owners}
    slots = []
    for name, spec in specs.items():
        head, _, leaf = name.rpartition("/")
        if not _is_slot(name):
            continue
        comps = head.split("/")
        owner = next((by_name[tail] for tail in ("/".join(comps[i:]) for i in range(len(comps)))
                      if tail in by_name), None)
        if owner is None:
            continue
        if spec.shape != owner.shape or spec.dtype not in FLOATS:
            raise PlanError(f"{prefix}: {name} holds {spec.dtype} {list(spec.shape)}, but as "
                            f"the {leaf} slot of the cuDNN tensor {owner.name} it would hold "
                            f"floats {list(owner.shape)}; --exclude it", tensor=name, file=prefix)
        slots.append(name)
    return tuple(sorted(slots))


def slot_suffix(model, slot):
    """(what stands before the buffer's name, what follows it) in the name of `slot`."""
    head, _, leaf = slot.rpartition("/")
    return head[:len(head) - len(model.buffer)], leaf


def _is_slot(name):
    leaf = name.rsplit("/", 1)[-1]
    return "/" in name and bool(SLOT_RE.fullmatch(leaf) or MOVING_AVERAGE_RE.fullmatch(leaf))


def _is_buffer(name, spec):
    comps = name.split("/")
    if _is_slot(name):
        return False
    if comps[-1] in _BUFFER_LEAVES:
        return True  # checked as a buffer (1-D float) by _check_buffer
    if len(spec.shape) != 1 or spec.dtype not in FLOATS:
        return False
    # A variable of its own under a cudnn scope (TF 1.0-1.2 models named it themselves), not a
    # cell's weights.
    in_cell = any(c in _COMPATIBLE_CELLS or LAYER_SCOPE_RE.fullmatch(c) or c.endswith("_cell")
                  for c in comps[:-1])
    return any("cudnn" in c.lower() for c in comps[:-1]) and not in_cell and comps[-1] not in (
        "kernel", "bias", "weights", "biases")


def _buffer_scopes(buffers, groups, prefix):
    """[(buffer, scope of its canonical and output names)].

    The buffer's own scope when canonical tensors are there, else the scope outside it when
    canonical tensors are there and no other buffer could own them, else its own scope.
    """
    own = {name: name.rpartition("/")[0] for name in buffers}
    outer = {name: scope.rpartition("/")[0] for name, scope in own.items()
             if scope and scope not in groups and scope.rpartition("/")[0] in groups}
    claims = {}
    for name, scope in outer.items():
        claims.setdefault(scope, []).append(name)
    for scope, claimants in claims.items():
        if len(claimants) > 1 or scope in own.values():
            owners = claimants + [n for n, s in own.items() if s == scope]
            raise PlanError(f"{prefix}: the canonical tensors under {scope or '(root)'}/ may "
                            f"belong to {' or '.join(owners)}; --exclude the others",
                            file=prefix)
    return [(name, outer.get(name, own[name])) for name in buffers]


def _canonical_groups(specs, prefix):
    """{scope: (Layout, names)} of the TF 1.3-1.15 canonical tensors (cudnn_compatible_*_cell).

    Raises PlanError when a group is not what TF saves: not floats, several cell kinds,
    layers or directions missing, a tensor missing or of the wrong shape.
    """
    found = {}
    for name, spec in specs.items():
        position = _canonical_place(name)
        if position is None or _is_slot(name):
            continue
        scope, kind, layer, direction, suffix = position
        if spec.dtype not in FLOATS:
            raise PlanError(f"{prefix}: {name} holds {spec.dtype}, but cuDNN canonical weights "
                            f"are floats; --exclude it", tensor=name, file=prefix)
        entry = found.setdefault(scope, {"kind": kind, "names": [], "shapes": {}})
        if entry["kind"] != kind:
            raise PlanError(f"{prefix}: {scope or '(root)'} holds canonical tensors of a cuDNN "
                            f"{entry['kind']} and of a {kind} ({name}); --exclude one",
                            tensor=name, file=prefix)
        entry["names"].append(name)
        entry["shapes"][(layer, direction, suffix)] = spec.shape
    return {scope: (_group_layout(scope, entry, prefix), entry["names"])
            for scope, entry in found.items()}


def layer_path(layer, direction, directions):
    """Where TF's cuDNN saveable puts layer `layer`'s cell, below the model's scope.

    One direction: `rnn/multi_rnn_cell/cell_<layer>`; two: `stack_bidirectional_rnn/
    cell_<layer>/bidirectional_rnn/{fw,bw}` (direction 0, 1). `_canonical_place` reads these.
    """
    cell = names.layer_scope(layer)
    if directions == 1:
        return f"{names.RNN_SCOPE}/{names.MULTI_RNN_CELL_SCOPE}/{cell}"
    side = names.BACKWARD_SCOPE if direction else names.FORWARD_SCOPE
    return f"{_STACK_BIDIRECTIONAL_SCOPE}/{cell}/{names.BIDIRECTIONAL_SCOPE}/{side}"


def _canonical_place(name):
    """(scope, kind, layer, direction, suffix) of a canonical tensor's name, or None."""
    comps = name.split("/")
    cells = [i for i, c in enumerate(comps) if c in _COMPATIBLE_CELLS]
    if not cells:
        return None
    cell = cells[-1]
    before = comps[:cell]
    sides = (names.FORWARD_SCOPE, names.BACKWARD_SCOPE)
    if len(before) >= 4 and before[-4] == _STACK_BIDIRECTIONAL_SCOPE and before[-2] == (
            names.BIDIRECTIONAL_SCOPE) and before[-1] in sides:
        layer, scope, direction = before[-3], before[:-4], sides.index(before[-1])
    elif len(before) >= 2 and before[-2] == names.MULTI_RNN_CELL_SCOPE:
        layer, direction = before[-1], 0
        scope = before[:-3] if len(before) >= 3 and before[-3] == names.RNN_SCOPE \
            else before[:-2]
    else:
        return None
    match = LAYER_SCOPE_RE.fullmatch(layer)
    if not match:
        return None
    return ("/".join(scope), _COMPATIBLE_CELLS[comps[cell]], int(match.group(1)), direction,
            "/".join(comps[cell + 1:]))


def _group_layout(scope, entry, prefix):
    """The Layout of one scope's canonical tensors, every (layer, direction) checked whole."""
    where = f"{prefix}: the cuDNN canonical tensors under {scope or '(root)'}/"
    layers = sorted({layer for layer, _, _ in entry["shapes"]})
    directions = sorted({direction for _, direction, _ in entry["shapes"]})
    if len(layers) != layers[-1] + 1:
        missing = next(i for i, layer in enumerate(layers) if layer != i)
        raise PlanError(f"{where} hold layers {', '.join(map(str, layers[:4]))}"
                        f"{', ...' if len(layers) > 4 else ''} but no cell_{missing}; the "
                        f"checkpoint is incomplete", file=prefix)
    kernel, bias, gates = (("kernel", "bias", 4) if entry["kind"] == "lstm"
                           else ("gates/kernel", "gates/bias", 2))
    kernel_shape = entry["shapes"].get((0, 0, kernel))
    bias_shape = entry["shapes"].get((0, 0, bias))
    if not kernel_shape or not bias_shape or len(kernel_shape) != 2 or len(bias_shape) != 1:
        raise PlanError(f"{where} lack the {kernel} and {bias} of layer 0 (or they are not "
                        f"2-D and 1-D); the checkpoint is incomplete", file=prefix)
    units = bias_shape[0] // gates
    try:
        layout = cudnn.Layout(entry["kind"], len(layers), units, kernel_shape[0] - units,
                              len(directions))
    except PlanError as exc:
        raise PlanError(f"{where}: {kernel} {list(kernel_shape)} and {bias} "
                        f"{list(bias_shape)} give no cuDNN layout ({exc})", file=prefix) from None
    _check_complete(layout, entry["shapes"], where, prefix)
    return layout


def _check_complete(layout, shapes, where, prefix):
    """Every canonical tensor of every (layer, direction) is there, with its shape, and no other."""
    n = layout.units
    expected = {}
    for layer in range(layout.layers):
        d = layout.layer_input(layer)
        wanted = ({"kernel": (d + n, 4 * n), "bias": (4 * n,)} if layout.kind == "lstm" else
                  {"gates/kernel": (d + n, 2 * n), "gates/bias": (2 * n,),
                   "candidate/input_projection/kernel": (d, n),
                   "candidate/input_projection/bias": (n,),
                   "candidate/hidden_projection/kernel": (n, n),
                   "candidate/hidden_projection/bias": (n,)})
        for direction in range(layout.directions):
            for suffix, shape in wanted.items():
                expected[(layer, direction, suffix)] = shape
    for key, shape in sorted(expected.items()):
        layer, direction, suffix = key
        at = f"layer {layer}" + (f" {('fw', 'bw')[direction]}" if layout.directions == 2 else "")
        if key not in shapes:
            raise PlanError(f"{where}: the canonical {suffix} of {at} is missing "
                            f"({layout.describe()}); the checkpoint is incomplete", file=prefix)
        if tuple(shapes[key]) != shape:
            raise PlanError(f"{where}: the canonical {suffix} of {at} has shape "
                            f"{list(shapes[key])}, but {layout.describe()} needs {list(shape)}",
                            file=prefix)
    for layer, direction, suffix in sorted(set(shapes) - set(expected)):
        raise PlanError(f"{where}: {suffix} of layer {layer} is no tensor a cuDNN "
                        f"{layout.kind} saves; --exclude it", file=prefix)


def _buffer_layout(name, spec, group, meta_layouts, given, prefix):
    length = spec.shape[0]
    candidates = []
    if group is not None:
        candidates.append((group[0], "canonical tensors"))
    fits = [cudnn.Layout(**fields) for fields in meta_layouts]
    fits = [layout for layout in dict.fromkeys(fits) if layout.size == length]
    if len(fits) == 1:
        candidates.append((fits[0], "--meta"))
    if given is not None:
        candidates.append((given, "flags"))
    if not candidates:
        hint = " (the graph's cuDNN ops give other sizes)" if meta_layouts else ""
        raise LayoutUnknownError(
            f"{prefix}: {name} looks like a cuDNN opaque buffer of {length} values, but its "
            f"layout cannot be told from the checkpoint{hint}: give --meta GRAPH.meta, or "
            f"--cudnn lstm|gru|rnn_tanh|rnn_relu --layers L --units N --input-size D "
            f"[--bidirectional]", tensor=name, file=prefix)
    layout, source = candidates[0]
    for other, other_source in candidates[1:]:
        if other != layout:
            raise PlanError(f"{prefix}: {name}: the {source} say {layout.describe()}, the "
                            f"{other_source} say {other.describe()}; fix the flags",
                            tensor=name, file=prefix)
    if layout.size != length:
        raise PlanError(f"{prefix}: {name}: {cudnn.describe_mismatch(length, layout)} "
                        f"(layout from the {source}); fix the flags or --meta",
                        tensor=name, file=prefix)
    return layout, source


def canonical_position(name):
    """A canonical tensor's name -> ((layer, direction index), suffix below the cell scope)."""
    _, _, layer, direction, suffix = _canonical_place(name)
    return (layer, direction), suffix
