"""cuDNN models (legacy_share.cudnn_models) as export stacks: Keras layers, weights, reference.

A cuDNN model becomes a Stack whose `cell` is the `cell` of one of `cell_kinds.CUDNN_KINDS`.
Its `sources` name the tensors of each (direction, layer): `{"opaque": (buffer,)}`, or the
canonical `cudnn_compatible_*_cell` tensors by suffix when no buffer was saved. A
bidirectional cuDNN stack reads both directions of the layer below, so it is
STACKED_BIDIRECTIONAL: one Bidirectional layer per layer.
"""

import numpy as np

from legacy_share import cell_kinds
from legacy_share import cudnn
from legacy_share import cudnn_models
from legacy_share.errors import ExportError
from legacy_share.keras import structure

__all__ = ["is_cudnn", "plan_cudnn", "layer_weights", "reference_outputs", "keras_rnn"]

_OPAQUE = "opaque"
_DIRECTIONS = {1: ("",), 2: ("fw", "bw")}


def is_cudnn(stack):
    """True when `stack` is a cuDNN model's (its `cell` one of `cell_kinds.CUDNN_KINDS`)."""
    return cell_kinds.cudnn_kind(stack.cell) is not None


def _mode(stack):
    return cell_kinds.cudnn_kind(stack.cell).mode


def plan_cudnn(opened, stack=None, layers=None, embedding=None, dense=None):
    """The ExportPlan of the cuDNN models of a checkpoint, or None when it holds none.

    Args:
      opened: the checkpoint as opening.open_for_planning opened it (with the old graph,
        the layout from flags and the buffer's name when it does not give itself away).
      stack: the scope of the model to export when there are several.
      layers: must be None or the layout's: a cuDNN stack is never shared.
      embedding, dense: not supported with a cuDNN model (refused when given).
    Returns:
      An ExportPlan whose stacks are the cuDNN models, or None.
    Raises:
      PlanError: a buffer's layout cannot be told or does not fit (cudnn_models.find_models),
        or the graph uses skip_input, projections or ROCm.
      CheckpointError: canonical tensors disagree with their buffer.
      ExportError: the model cannot be exported as asked.
    """
    ckpt = opened.checkpoint
    models, unknown = opened.cudnn_models()
    if unknown is not None:
        raise unknown
    if not models:
        return None
    if layers is not None and layers not in {m.layout.layers for m in models}:
        raise ExportError(f"{ckpt.prefix}: --layers {layers} does not fit the cuDNN model(s) "
                          f"({'; '.join(m.layout.describe() for m in models)}); a cuDNN stack "
                          f"stores its layers itself")
    for kind, value in (("embedding", embedding), ("dense", dense)):
        if value:
            raise ExportError(f"{ckpt.prefix}: --{kind} is not supported with a cuDNN model; "
                              f"export the stack alone")
    if not ckpt.missing_files():
        cudnn_models.check_canonical(ckpt, models)
    shape_of = {spec.name: tuple(spec.shape) for spec in ckpt.specs}
    stacks = tuple(_stack(model) for model in models)
    if not isinstance(stack, (str, type(None))):  # --stack A --stack B: a chain
        if len(stack) > 1:
            raise ExportError(f"{ckpt.prefix}: --stack is given {len(stack)} times, but the "
                              f"export does not chain cuDNN models; export one with --stack "
                              f"SCOPE")
        stack = stack[0] if stack else None
    chosen = structure.choose_stack(ckpt.prefix, stacks, stack)
    used = {src for cell in chosen.sources.values() for srcs in cell.values() for src in srcs}
    chosen_model = models[stacks.index(chosen)]
    used.update(chosen_model.canonical)
    not_exported = tuple(sorted((name, structure.why_not(name, chosen, stacks))
                                for name in shape_of if name not in used))
    return structure.ExportPlan(ckpt.prefix, stacks, chosen, None, None, not_exported)


def _stack(model):
    """The export Stack of a cuDNN Model (its canonical tensors checked whole by find_models)."""
    layout = model.layout
    directions = _DIRECTIONS[layout.directions]
    sources = {}
    if model.buffer is not None:
        for layer in range(layout.layers):
            for direction in directions:
                sources[(direction, layer)] = {_OPAQUE: (model.buffer,)}
    else:
        for name in model.canonical:
            (layer, direction), suffix = cudnn_models.canonical_position(name)
            sources.setdefault((directions[direction], layer), {})[suffix] = (name,)
    topology = structure.FORWARD if layout.directions == 1 else structure.STACKED_BIDIRECTIONAL
    depths = tuple(layout.layer_input(layer) for layer in range(layout.layers))
    cell = next(kind.cell for kind in cell_kinds.CUDNN_KINDS if kind.mode == layout.kind)
    return structure.Stack(model.buffer or model.scope, cell, topology, layout.layers, False,
                           layout.units, layout.units, depths, sources, (), structure.EXACT,
                           forget_bias=0.0, origin=model.source)


def layout_of(stack):
    """The cudnn.Layout of a cuDNN Stack."""
    return cudnn.Layout(_mode(stack), stack.layers, stack.units, stack.depths[0],
                        stack.directions)


def canonicals(stack, value_of):
    """{(layer, direction index): cudnn.Canonical} of a cuDNN Stack, from `value_of(names)`."""
    layout = layout_of(stack)
    directions = _DIRECTIONS[layout.directions]
    first = stack.sources[(directions[0], 0)]
    if _OPAQUE in first:
        return cudnn.unpack(value_of(first[_OPAQUE]), layout,
                            name=f"{stack.scope} ({first[_OPAQUE][0]})")
    return {(layer, index): cudnn.from_compatible(
        layout.kind, {suffix: value_of(srcs) for suffix, srcs in
                      stack.sources[(direction, layer)].items()}, layout.layer_input(layer))
            for layer in range(layout.layers) for index, direction in enumerate(directions)}


def layer_weights(stack, value_of, direction, position):
    """[kernel, recurrent_kernel, bias] of the Keras layer of one (direction, layer), in the
    checkpoint's dtype (the model casts them to its own)."""
    index = _DIRECTIONS[stack.directions].index(direction)
    canonical = canonicals(stack, value_of)[(position, index)]
    return [np.asarray(w) for w in cudnn.keras_weights(canonical, _mode(stack))]


def reference_outputs(stack, value_of, inputs, lengths):
    """The cuDNN equations (cudnn.run, float64) of the stack on `inputs` with `lengths`."""
    return cudnn.run(canonicals(stack, value_of), layout_of(stack), inputs, lengths)


def keras_rnn(K, stack, options):  # pylint: disable=invalid-name
    """The Keras layer of one cuDNN layer (one direction); `options` are its common options."""
    kind = _mode(stack)
    if kind == "lstm":
        return K.layers.LSTM(stack.units, activation="tanh", recurrent_activation="sigmoid",
                             unit_forget_bias=False, **options)
    if kind == "gru":
        return K.layers.GRU(stack.units, activation="tanh", recurrent_activation="sigmoid",
                            reset_after=True, **options)
    return K.layers.SimpleRNN(stack.units, activation="relu" if kind == "rnn_relu" else "tanh",
                              **options)

