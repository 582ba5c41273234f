"""cuDNN models in a checkpoint: where they are, their layout, and how they read as TF1 cells.

A cuDNN model is an opaque buffer (`cudnn_lstm/opaque_kernel`, or any 1-D tensor the user names)
and/or the canonical tensors TF 1.3-1.15 saved beside it (`.../cudnn_compatible_lstm_cell/...`).
`find_models` is pure (names and shapes in, models out); `CudnnCheckpoint` is a read-only view of
an open checkpoint in which each model's tensors are replaced by today's TF1 cell tensors.
"""

import dataclasses
import re
from typing import Optional, Tuple

import numpy as np

from legacy_share import cudnn
from legacy_share.errors import CheckpointError, PlanError
from legacy_share.planning import OPTIMIZER_SLOT_NAMES, TensorSpec

__all__ = ["Model", "find_models", "layouts_from_meta", "CudnnCheckpoint", "output_tensors",
           "check_canonical", "open_cudnn", "canonical_position"]

_SLOT_RE = re.compile(r"(?:%s)(?:_\d+)*" % "|".join(OPTIMIZER_SLOT_NAMES))
_BUFFER_LEAVES = ("opaque_kernel", "opaque_params")
_COMPATIBLE_CELLS = {"cudnn_compatible_lstm_cell": "lstm", "cudnn_compatible_gru_cell": "gru"}
_CELL_RE = re.compile(r"cell_(\d+)")
_FLOATS = ("float16", "bfloat16", "float32", "float64")
_OPS_WITH_SIZES = ("CudnnRNNParamsSize", "CudnnRNNParamsToCanonical",
                   "CudnnRNNParamsToCanonicalV2", "CudnnRNNCanonicalToParams",
                   "CudnnRNNCanonicalToParamsV2")
_RNN_OPS = ("CudnnRNN", "CudnnRNNV2", "CudnnRNNV3")
# TF1 cell each cuDNN mode migrates to (None: no TF1 core cell computes it).
TF1_CELLS = {"lstm": "lstm_cell", "rnn_tanh": "basic_rnn_cell", "rnn_relu": "basic_rnn_cell",
             "gru": None}


@dataclasses.dataclass(frozen=True)
class Model:
    """One cuDNN model: its `buffer` (None if only canonical tensors were saved), the `scope`
    its canonical and output names live under ('' at the root), its `layout`, where the layout
    came from (`source`), the `canonical` tensors found and the buffer's optimizer `slots`."""

    buffer: Optional[str]
    scope: str
    layout: cudnn.Layout
    source: str
    canonical: Tuple[str, ...] = ()
    slots: Tuple[str, ...] = ()


def find_models(specs, meta_layouts=(), given=None, buffer_name=None, prefix="checkpoint"):
    """The cuDNN models among `specs` (TensorSpecs) -> [Model], sorted by scope.

    The layout of a buffer comes from its canonical tensors, else from `meta_layouts`
    (dicts of Layout fields read from a graph, matched by size), else from `given` (a Layout
    from the command line). `buffer_name` names a buffer whose name is not recognisable.
    Raises PlanError when a buffer's layout cannot be told or does not fit its length.
    """
    specs = {spec.name: spec for spec in specs}
    groups = _canonical_groups(specs)
    buffers = [name for name, spec in specs.items() if _is_buffer(name, spec)]
    if buffer_name is not None:
        if buffer_name not in specs:
            raise PlanError(f"{prefix}: no tensor {buffer_name!r} for --cudnn-buffer",
                            file=prefix)
        buffers = sorted(set(buffers) | {buffer_name})
    if given is not None and not buffers:
        buffers = [name for name, spec in specs.items()
                   if spec.shape == (given.size,) and spec.dtype in _FLOATS
                   and not _is_slot(name)]
        if len(buffers) != 1:
            lengths = sorted({(n, s.shape[0]) for n, s in specs.items() if len(s.shape) == 1
                              and s.dtype in _FLOATS and not _is_slot(n)}, key=lambda p: -p[1])
            shown = ", ".join(f"{n} ({length})" for n, length in lengths[:3]) or "none"
            what = "several tensors" if buffers else "no tensor"
            raise PlanError(
                f"{prefix}: {what} of {given.size} values fit {given.describe()} (1-D float "
                f"tensors: {shown}); check the flags, or name the buffer with --cudnn-buffer",
                file=prefix)
    models = []
    for name in sorted(buffers):
        spec = specs[name]
        scope = "/".join(name.split("/")[:-1])
        group = groups.pop(scope, None)
        layout, source = _buffer_layout(name, spec, group, meta_layouts, given, prefix)
        slots = tuple(sorted(n for n in specs if n.startswith(name + "/")
                             and _is_slot(n) and specs[n].shape == spec.shape))
        models.append(Model(name, scope, layout, source,
                            tuple(sorted(group[1])) if group else (), slots))
    for scope, (layout, names_) in sorted(groups.items()):
        models.append(Model(None, scope, layout, "canonical tensors", tuple(sorted(names_))))
    return sorted(models, key=lambda m: m.scope)


def _is_slot(name):
    return "/" in name and bool(_SLOT_RE.fullmatch(name.rsplit("/", 1)[1]))


def _is_buffer(name, spec):
    if len(spec.shape) != 1 or spec.dtype not in _FLOATS or _is_slot(name):
        return False
    comps = name.split("/")
    if comps[-1] in _BUFFER_LEAVES:
        return True
    # A variable of its own under a cudnn scope (TF 1.0-1.2 models named it themselves), not a
    # cell's weights.
    in_cell = any(c in _COMPATIBLE_CELLS or _CELL_RE.fullmatch(c) or c.endswith("_cell")
                  for c in comps[:-1])
    return any("cudnn" in c.lower() for c in comps[:-1]) and not in_cell and comps[-1] not in (
        "kernel", "bias", "weights", "biases")


def _canonical_groups(specs):
    """{scope: (Layout, names)} of the TF 1.3-1.15 canonical tensors (cudnn_compatible_*_cell)."""
    found = {}
    for name, spec in specs.items():
        comps = name.split("/")
        cells = [i for i, c in enumerate(comps) if c in _COMPATIBLE_CELLS]
        layers = [i for i, c in enumerate(comps) if _CELL_RE.fullmatch(c)]
        if not cells or not layers or _is_slot(name):
            continue
        cell, layer_at = cells[-1], layers[-1]
        start = next((i for i, c in enumerate(comps) if c in (
            "rnn", "stack_bidirectional_rnn", "multi_rnn_cell")), layer_at)
        scope = "/".join(comps[:start])
        direction = 1 if "bw" in comps[layer_at:cell] else 0
        entry = found.setdefault(scope, {"kind": _COMPATIBLE_CELLS[comps[cell]], "names": [],
                                         "layers": set(), "directions": set(), "shapes": {}})
        entry["names"].append(name)
        entry["layers"].add(int(_CELL_RE.fullmatch(comps[layer_at]).group(1)))
        entry["directions"].add(direction)
        entry["shapes"][(int(_CELL_RE.fullmatch(comps[layer_at]).group(1)), direction,
                         "/".join(comps[cell + 1:]))] = spec.shape
    groups = {}
    for scope, entry in found.items():
        kernel, bias = (("kernel", "bias") if entry["kind"] == "lstm"
                        else ("gates/kernel", "gates/bias"))
        gates = 4 if entry["kind"] == "lstm" else 2
        kernel_shape = entry["shapes"].get((0, 0, kernel))
        bias_shape = entry["shapes"].get((0, 0, bias))
        if not kernel_shape or not bias_shape or len(kernel_shape) != 2:
            continue
        units = bias_shape[0] // gates
        layout = cudnn.Layout(entry["kind"], max(entry["layers"]) + 1, units,
                              kernel_shape[0] - units, len(entry["directions"]))
        groups[scope] = (layout, entry["names"])
    return groups


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
        raise PlanError(
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


def layouts_from_meta(meta_graph):
    """Layout fields of the cuDNN ops of a MetaGraphDef proto -> [dict], never running it.

    Raises PlanError for what cannot be migrated: skip_input mode, projections (num_proj),
    a ROCm build.
    """
    graph = meta_graph.graph_def
    nodes = {node.name: node for node in graph.node}
    version = f"{meta_graph.meta_info_def.tensorflow_version} " \
              f"{meta_graph.meta_info_def.tensorflow_git_version}"
    found = []
    for node in graph.node:
        if node.op not in _OPS_WITH_SIZES + _RNN_OPS:
            continue
        attrs = {key: node.attr[key].s.decode() for key in ("rnn_mode", "input_mode", "direction")
                 if key in node.attr}
        if attrs.get("input_mode") == "skip_input":
            raise PlanError(f"graph node {node.name} uses input_mode skip_input, which adds the "
                            f"input without weights; only linear_input buffers can be unpacked")
        if "num_proj" in node.attr and node.attr["num_proj"].i:
            raise PlanError(f"graph node {node.name} projects its output (num_proj "
                            f"{node.attr['num_proj'].i}); such buffers are not supported")
        if "rocm" in version.lower():
            raise PlanError(f"the graph was written by a ROCm build ({version.strip()}): MIOpen "
                            f"orders the gates of its buffers differently; not supported")
        if node.op in _RNN_OPS:
            continue
        sizes = [_constant(nodes, node.input[i]) for i in range(3)]
        if None in sizes or "rnn_mode" not in attrs:
            continue
        found.append(dict(kind=attrs["rnn_mode"], layers=sizes[0], units=sizes[1],
                          input_size=sizes[2],
                          directions=2 if attrs.get("direction") == "bidirectional" else 1))
    return found


def _constant(nodes, input_name):
    node = nodes.get(input_name.lstrip("^").split(":")[0])
    if node is None or node.op != "Const":
        return None
    tensor = node.attr["value"].tensor
    values = list(tensor.int_val) or list(tensor.int64_val)
    return int(values[0]) if len(values) == 1 and values[0] > 0 else None


def output_tensors(model, forget_bias=1.0):
    """{today's TF1 name: (direction-layer key, suffix)} of what `model` migrates to.

    LSTM -> `lstm_cell/{kernel, bias}` (bias folded for `forget_bias`), RNN -> `basic_rnn_cell`,
    under `<scope>/rnn/multi_rnn_cell/cell_k/` or, bidirectional,
    `<scope>/stack_bidirectional_rnn/cell_k/bidirectional_rnn/{fw,bw}/`.
    """
    cell = TF1_CELLS[model.layout.kind]
    if cell is None:
        raise PlanError(
            f"{model.buffer or model.scope}: a cuDNN GRU computes "
            f"h~ = tanh(W x + r * (R h + bR)), which no TF1 core cell computes, so it has no "
            f"TF1 checkpoint to migrate to; `legacy-share export` makes it a Keras "
            f"GRU(reset_after=True)", tensor=model.buffer)
    head = f"{model.scope}/" if model.scope else ""
    out = {}
    for layer in range(model.layout.layers):
        for direction in range(model.layout.directions):
            if model.layout.directions == 1:
                base = f"{head}rnn/multi_rnn_cell/cell_{layer}/{cell}"
            else:
                base = (f"{head}stack_bidirectional_rnn/cell_{layer}/bidirectional_rnn/"
                        f"{'bw' if direction else 'fw'}/{cell}")
            for suffix in ("kernel", "bias"):
                out[f"{base}/{suffix}"] = ((layer, direction), suffix)
    return out


class CudnnCheckpoint:
    """An open Checkpoint seen with each cuDNN model's tensors as today's TF1 cell tensors.

    It has the Checkpoint interface the planner and writer use (`prefix`, `version`, `specs`,
    `files`, `missing_files()`, `read(name)`); buffers, their slots and the canonical tensors
    are replaced by `output_tensors` (slots follow as `<kernel>/Adam`, ...). `notes` says what
    was assumed.
    """

    def __init__(self, ckpt, models, forget_bias=1.0):
        self._ckpt = ckpt
        self.prefix, self.version, self.models = ckpt.prefix, ckpt.version, tuple(models)
        self.forget_bias = float(forget_bias)
        self._virtual, self._cache = {}, (None, None)
        hidden = set()
        stored = {spec.name: spec for spec in ckpt.specs}
        added = []
        for model in self.models:
            hidden.update(model.canonical)
            if model.buffer is None:
                continue  # canonical tensors alone: nothing to unpack, kept as they are
            hidden.add(model.buffer)
            hidden.update(model.slots)
            dtype = stored[model.buffer].dtype
            for name, (key, suffix) in output_tensors(model, forget_bias).items():
                shape = _tf1_shape(model.layout, key[0], suffix)
                self._virtual[name] = (model, key, suffix, None)
                added.append(TensorSpec(name, shape, dtype))
                for slot in model.slots:
                    slot_name = f"{name}/{slot[len(model.buffer) + 1:]}"
                    self._virtual[slot_name] = (model, key, suffix, slot)
                    added.append(TensorSpec(slot_name, shape, stored[slot].dtype))
        hidden.difference_update(spec.name for spec in added)
        self._replaced = sorted(set(stored) & set(self._virtual))
        self.specs = sorted([spec for name, spec in stored.items()
                             if name not in hidden and name not in self._virtual] + added,
                            key=lambda spec: spec.name)
        self.notes = tuple(self._note(model) for model in self.models)

    def _note(self, model):
        what = model.buffer or f"{model.scope or '(root)'} canonical tensors"
        text = f"{what}: cuDNN {model.layout.describe()} (from the {model.source})"
        if model.buffer is None:
            return text + "; no opaque buffer, tensors kept as saved"
        cell = TF1_CELLS[model.layout.kind]
        text += f" -> {cell} per layer"
        if model.layout.kind == "lstm":
            text += (f", bias = bW + bR with the forget bias folded for "
                     f"LSTMCell(forget_bias={self.forget_bias:g})")
        elif model.layout.kind == "rnn_relu":
            text += ", bias = bW + bR; build BasicRNNCell(activation=tf.nn.relu)"
        else:
            text += ", bias = bW + bR"
        if model.slots:
            text += ("; optimizer slots unpacked alike (a summed bias takes the input bias's "
                     "slot: both biases of a gate get the same gradient)")
        return text

    @property
    def files(self):
        return self._ckpt.files

    def missing_files(self):
        return self._ckpt.missing_files()

    def read(self, name):
        """Tensor `name` as numpy: unpacked and converted for the replaced ones."""
        if name not in self._virtual:
            return self._ckpt.read(name)
        model, key, suffix, slot = self._virtual[name]
        canonical = self.canonicals(model, slot)[key]
        if slot is None:
            weights = _tf1_weights(model.layout.kind, canonical, self.forget_bias)
            return weights[0] if suffix == "kernel" else weights[1]
        order = _TF1_ORDER[model.layout.kind]
        if suffix == "kernel":
            return _tf1_weights(model.layout.kind, canonical, 0.0)[0]
        return np.concatenate([canonical.bW[g] for g in order])

    def canonicals(self, model, slot=None):
        """{(layer, direction): Canonical} of `model`'s buffer (or of its optimizer `slot`)."""
        tensor = slot or model.buffer
        # One model's buffer and slots held at a time: the writer's sorted names interleave
        # them (kernel, kernel/Adam, bias, ...) but never two models (scopes sort apart).
        if self._cache[0] != model.buffer:
            self._cache = (model.buffer, {})
        held = self._cache[1]
        if tensor not in held:
            held[tensor] = cudnn.unpack(self._ckpt.read(tensor), model.layout,
                                        name=f"{self.prefix}: {tensor}")
        return held[tensor]

    def check_replaced(self, tolerance=1e-6):
        """Raises CheckpointError where a saved tensor under an unpacked name differs from it."""
        for name in self._replaced:
            saved, unpacked = self._ckpt.read(name), self.read(name)
            if saved.shape != unpacked.shape or not np.allclose(saved, unpacked, rtol=tolerance,
                                                                atol=tolerance):
                raise CheckpointError(f"{self.prefix}: {name} is saved and also unpacked from a "
                                      f"cuDNN buffer, with different values; --exclude one")


def check_canonical(ckpt, models, tolerance=1e-6, unpacked=None):
    """Raises CheckpointError where a saved canonical tensor disagrees with its buffer.

    Args:
      ckpt: the open Checkpoint; models: its Models (find_models).
      tolerance: allowed |difference|, relative to the largest |value| when that exceeds 1.
      unpacked: model -> its buffer's {(layer, direction): Canonical}, when the caller has
        them already (a CudnnCheckpoint); by default the buffer is read and unpacked here.
    """
    for model in models:
        if model.buffer is None or not model.canonical:
            continue
        canonicals = (unpacked(model) if unpacked is not None else
                      cudnn.unpack(ckpt.read(model.buffer), model.layout,
                                   name=f"{ckpt.prefix}: {model.buffer}"))
        for name in model.canonical:
            key, suffix = canonical_position(name)
            expected = _compatible_weights(model.layout.kind, canonicals[key]).get(suffix)
            saved = ckpt.read(name)
            if expected is None or expected.shape != saved.shape:
                raise CheckpointError(
                    f"{ckpt.prefix}: {name} {list(saved.shape)} does not belong to "
                    f"{model.buffer} ({model.layout.describe()}); use an intact checkpoint")
            difference = float(np.max(np.abs(expected.astype(np.float64) - saved), initial=0.0))
            scale = max(1.0, float(np.max(np.abs(saved), initial=0.0)))
            if not difference <= tolerance * scale:
                raise CheckpointError(
                    f"{ckpt.prefix}: {name} and {model.buffer} hold different weights (max "
                    f"|diff| {difference:.3g}); the checkpoint is inconsistent, use an intact "
                    f"copy or --exclude one of them")


def open_cudnn(ckpt, meta_graph=None, layout=None, buffer_name=None):
    """`ckpt` as the planner should see it -> (reader, notes).

    The reader is `ckpt` itself when it holds no cuDNN buffer, else a CudnnCheckpoint whose
    buffers read as TF1 cell tensors, checked against their canonical tensors when the data
    files are there.

    Args:
      ckpt: an open Checkpoint.
      meta_graph: the old graph's MetaGraphDef proto, or None (see layouts_from_meta).
      layout: a cudnn.Layout given on the command line, or None.
      buffer_name: the buffer's tensor name when it does not give itself away, or None.

    Raises:
      PlanError: a buffer's layout cannot be told, does not fit, or cannot be migrated (GRU).
      CheckpointError: a canonical tensor disagrees with its buffer.
    """
    meta_layouts = layouts_from_meta(meta_graph) if meta_graph is not None else ()
    models = find_models(ckpt.specs, meta_layouts, layout, buffer_name, prefix=ckpt.prefix)
    if not any(model.buffer for model in models):
        return ckpt, ()
    view = CudnnCheckpoint(ckpt, models)
    if not ckpt.missing_files():
        # The view's unpacked buffer: the writer reads it from there again, not from disk.
        check_canonical(ckpt, models, unpacked=lambda model: view.canonicals(model))
        view.check_replaced()
    return view, view.notes


_TF1_ORDER = {"lstm": (0, 2, 1, 3), "rnn_tanh": (0,), "rnn_relu": (0,), "gru": (0, 1, 2)}


def _tf1_weights(kind, canonical, forget_bias):
    if kind == "lstm":
        return cudnn.lstm_cell_weights(canonical, forget_bias)
    return cudnn.basic_rnn_cell_weights(canonical)


def _tf1_shape(layout, layer, suffix):
    columns = layout.units * (4 if layout.kind == "lstm" else 1)
    if suffix == "kernel":
        return (layout.layer_input(layer) + layout.units, columns)
    return (columns,)


def canonical_position(name):
    """A canonical tensor's name -> ((layer, direction index), suffix below the cell scope)."""
    comps = name.split("/")
    cell = max(i for i, c in enumerate(comps) if c in _COMPATIBLE_CELLS)
    layer_at = max(i for i, c in enumerate(comps) if _CELL_RE.fullmatch(c))
    direction = 1 if "bw" in comps[layer_at:cell] else 0
    return ((int(_CELL_RE.fullmatch(comps[layer_at]).group(1)), direction),
            "/".join(comps[cell + 1:]))


def _compatible_weights(kind, canonical):
    if kind == "lstm":
        return dict(zip(("kernel", "bias"), cudnn.compatible_lstm_cell_weights(canonical)))
    return cudnn.compatible_gru_cell_weights(canonical)
