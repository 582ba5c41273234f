"""cuDNN models (legacy_share.cudnn_finding) read as today's TF1 cells.

`CudnnCheckpoint` is a read-only view of an open checkpoint in which each model's buffer, its
slots and its canonical tensors are replaced by today's TF1 cell tensors (`lstm_cell`,
`basic_rnn_cell`); `check_canonical` proves canonical tensors and buffer agree.
"""

import numpy as np

from legacy_share import cell_kinds
from legacy_share import cudnn
from legacy_share.cudnn_finding import (Model, canonical_position, find_models, layer_path,
                                        slot_suffix)
from legacy_share.errors import CheckpointError, PlanError
from legacy_share.graph_settings import cudnn_layouts as layouts_from_meta
from legacy_share.plans import TensorSpec

__all__ = ["Model", "find_models", "layouts_from_meta", "CudnnCheckpoint", "output_tensors",
           "check_canonical", "view_of", "canonical_position", "TF1_CELLS"]

# TF1 cell each cuDNN mode migrates to (None: no TF1 core cell computes it).
TF1_CELLS = {kind.mode: kind.tf1_scope for kind in cell_kinds.CUDNN_KINDS}


def output_tensors(model):
    """{today's TF1 name: (direction-layer key, suffix)} of what `model` migrates to.

    LSTM -> `lstm_cell/{kernel, bias}` (bias folded for `forget_bias`), RNN -> `basic_rnn_cell`,
    under `<scope>/rnn/multi_rnn_cell/cell_k/` or, bidirectional,
    `<scope>/stack_bidirectional_rnn/cell_k/bidirectional_rnn/{fw,bw}/`.
    """
    cell = TF1_CELLS[model.layout.kind]
    if cell is None:
        what = model.buffer or f"{model.scope or '(root)'} canonical tensors"
        raise PlanError(
            f"{what}: a cuDNN GRU computes "
            f"h~ = tanh(W x + r * (R h + bR)), which no TF1 core cell computes, so it has no "
            f"TF1 checkpoint to migrate to; `legacy-share export` makes it a Keras "
            f"GRU(reset_after=True)", tensor=model.buffer)
    head = f"{model.scope}/" if model.scope else ""
    out = {}
    for layer in range(model.layout.layers):
        for direction in range(model.layout.directions):
            base = f"{head}{layer_path(layer, direction, model.layout.directions)}/{cell}"
            for suffix in ("kernel", "bias"):
                out[f"{base}/{suffix}"] = ((layer, direction), suffix)
    return out


class CudnnCheckpoint:
    """An open Checkpoint seen with each cuDNN model's tensors as today's TF1 cell tensors.

    It has the Checkpoint interface the planner and writer use (`prefix`, `version`, `specs`,
    `files`, `missing_files()`, `read(name)`); buffers, their slots and the canonical tensors
    are replaced by `output_tensors` (slots follow as `<kernel>/Adam`, ...; a model with no
    buffer is read from its canonical tensors). `notes` says what was assumed.
    """

    def __init__(self, ckpt, models, forget_bias=1.0):
        self._ckpt = ckpt
        self.prefix, self.version, self.models = ckpt.prefix, ckpt.version, tuple(models)
        self.forget_bias = float(forget_bias)
        self._virtual, self._cache = {}, (None, None)
        stored = {spec.name: spec for spec in ckpt.specs}
        hidden, added = set(), []
        for model in self.models:
            hidden.update(model.canonical + model.slots + ((model.buffer,) if model.buffer else ()))
            sources = _canonical_sources(model)
            for name, (key, suffix) in output_tensors(model).items():
                source = model.buffer or sources[(key, suffix)]
                shape = _tf1_shape(model.layout, key[0], suffix)
                self._virtual[name] = (model, key, suffix, None, stored[source].dtype)
                added.append(TensorSpec(name, shape, stored[source].dtype))
                for slot in model.slots:
                    before, leaf = slot_suffix(model, slot) if model.buffer else (
                        _canonical_slot_suffix(slot, source))
                    if leaf is None:
                        continue  # another canonical tensor's slot
                    slot_name = f"{before}{name}/{leaf}"
                    self._virtual[slot_name] = (model, key, suffix, slot, stored[slot].dtype)
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
        cell = TF1_CELLS[model.layout.kind]
        text += f" -> {cell} per layer"
        if model.layout.kind == "lstm":
            text += (f", bias = bW + bR with the forget bias folded for "
                     f"LSTMCell(forget_bias={self.forget_bias:g})")
        elif model.layout.kind == "rnn_relu":
            text += ", bias = bW + bR; build BasicRNNCell(activation=tf.nn.relu)"
        else:
            text += ", bias = bW + bR"
        if model.slots and model.buffer:
            text += ("; optimizer slots unpacked alike (a summed bias takes the input bias's "
                     "slot: both biases of a gate get the same gradient)")
        elif model.slots:
            text += "; optimizer slots renamed alike, their values kept"
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
        model, key, suffix, slot, dtype = self._virtual[name]
        if model.buffer is None:
            return _from_canonical(self._ckpt, model, key, suffix, slot, self.forget_bias)
        canonical = self.canonicals(model, slot)[key]
        if slot is None:
            weights = _tf1_weights(model.layout.kind, canonical, self.forget_bias)
        elif suffix == "kernel":
            weights = _tf1_weights(model.layout.kind, canonical, 0.0)
        else:
            order = _TF1_ORDER[model.layout.kind]
            weights = (None, np.concatenate([canonical.bW[g] for g in order]))
        return np.asarray(weights[0] if suffix == "kernel" else weights[1]).astype(
            dtype, copy=False)

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
            # TF summed the biases in the saved dtype: allow its rounding (float16: 1e-3).
            allowed = max(tolerance, 2 * _EPSILON.get(saved.dtype.name, 0.0)) * scale
            if not difference <= allowed:
                raise CheckpointError(
                    f"{ckpt.prefix}: {name} and {model.buffer} hold different weights (max "
                    f"|diff| {difference:.3g}); the checkpoint is inconsistent, use an intact "
                    f"copy or --exclude one of them")


def view_of(ckpt, models):
    """`ckpt` as the planner should see it -> (reader, notes).

    The reader is `ckpt` itself when it holds no cuDNN model, else a CudnnCheckpoint whose
    buffers and canonical tensors read as TF1 cell tensors, buffers checked against their
    canonical tensors when the data files are there.

    Args:
      ckpt: an open Checkpoint.
      models: its cuDNN Models (find_models; opening.Opened.cudnn_models).

    Raises:
      PlanError: a model cannot be migrated (GRU).
      CheckpointError: a canonical tensor disagrees with its buffer.
    """
    if not models:
        return ckpt, ()
    view = CudnnCheckpoint(ckpt, models)
    if not ckpt.missing_files():
        # The view's unpacked buffer: the writer reads it from there again, not from disk.
        check_canonical(ckpt, models, unpacked=lambda model: view.canonicals(model))
        view.check_replaced()
    return view, view.notes


_EPSILON = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}  # narrower than float32
_TF1_ORDER = {"lstm": (0, 2, 1, 3), "rnn_tanh": (0,), "rnn_relu": (0,), "gru": (0, 1, 2)}


def _tf1_weights(kind, canonical, forget_bias):
    if kind == "lstm":
        return cudnn.lstm_cell_weights(canonical, forget_bias)
    return cudnn.basic_rnn_cell_weights(canonical)


def _canonical_sources(model):
    """{((layer, direction), "kernel" | "bias"): canonical tensor} of an LSTM without buffer."""
    if model.buffer is not None:
        return {}
    return {canonical_position(name): name for name in model.canonical}


def _canonical_slot_suffix(slot, source):
    """(what stands before `source` in the name of `slot`, the slot's leaf), or (None, None)."""
    head, _, leaf = slot.rpartition("/")
    if head != source and not head.endswith("/" + source):
        return None, None
    return head[:len(head) - len(source)], leaf


def _from_canonical(ckpt, model, key, suffix, slot, forget_bias):
    """An LSTMCell tensor of a model saved as `cudnn_compatible_lstm_cell` tensors alone.

    Their kernel is LSTMCell's (rows [inputs; state], columns i, j, f, o) and their bias is
    bW + bR with no forget bias: LSTMCell adds `forget_bias` at run time, so it is subtracted
    from the forget block. Slots are copied.
    """
    source = _canonical_sources(model)[(key, suffix)]
    value = ckpt.read(slot or source)
    if slot is None and suffix == "bias":
        n = model.layout.units
        value = value.copy()
        wide = value[2 * n:3 * n].astype(np.promote_types(value.dtype, np.float32))
        value[2 * n:3 * n] = wide - forget_bias
    return value


def _tf1_shape(layout, layer, suffix):
    columns = layout.units * (4 if layout.kind == "lstm" else 1)
    if suffix == "kernel":
        return (layout.layer_input(layer) + layout.units, columns)
    return (columns,)


def _compatible_weights(kind, canonical):
    if kind == "lstm":
        return dict(zip(("kernel", "bias"), cudnn.compatible_lstm_cell_weights(canonical)))
    return cudnn.compatible_gru_cell_weights(canonical)
