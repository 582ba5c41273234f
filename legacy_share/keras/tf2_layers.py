"""One layer of a tf.keras checkpoint: its Keras kind told by its weights' names and shapes,
and the chain of layers settled with what the checkpoint does not store (`Assumptions`).

    embeddings [V, D]                                     -> Embedding
    cell/{kernel [D, G*U], recurrent_kernel [U, G*U], bias}: G = 1, 3, 4
                                                          -> SimpleRNN, GRU, LSTM
      (GRU: bias [2, 3U] -> reset_after=True, [3U] -> False)
    forward_layer/cell/..., backward_layer/cell/...       -> Bidirectional of that RNN
    kernel [D, U] (, bias [U])                            -> Dense

Pure: no TensorFlow, no Keras.
"""

import dataclasses
from typing import Optional, Tuple

from legacy_share.errors import ExportError

__all__ = ["Assumptions", "KerasLayer", "layer_of", "connect", "ACTIVATIONS", "MERGE_MODES",
           "EMBEDDING", "DENSE", "SIMPLE_RNN", "GRU", "LSTM", "DROPOUT", "RNNS"]

EMBEDDING, DENSE, SIMPLE_RNN, GRU, LSTM, DROPOUT = (
    "Embedding", "Dense", "SimpleRNN", "GRU", "LSTM", "Dropout")
RNNS = (SIMPLE_RNN, GRU, LSTM)
_GATE_BLOCKS = {1: SIMPLE_RNN, 3: GRU, 4: LSTM}
# Activations both Keras 3 and tf_keras compute alike (hard_sigmoid differs between them).
ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear", "softmax", "elu", "selu", "softplus",
               "softsign", "exponential")
MERGE_MODES = ("concat", "sum", "mul", "ave")


@dataclasses.dataclass(frozen=True)
class Assumptions:
    """What a tf.keras checkpoint does not store, as the export assumes it (CLI flags)."""

    activation: str = "tanh"                 # every RNN layer's
    recurrent_activation: str = "sigmoid"    # every GRU / LSTM layer's
    return_sequences: bool = False           # the last RNN layer's (those before it: True)
    dense_activation: str = "linear"         # every Dense layer's
    merge_mode: Optional[str] = None         # every Bidirectional's; None: told by the shapes
    mask_zero: bool = False                  # the Embedding's
    weightless: Optional[str] = None         # "dropout": layers without weights are Dropout


@dataclasses.dataclass(frozen=True)
class KerasLayer:
    """One layer of the chain: `path` in the object graph, the Keras `kind` and its settings.

    `weights`: (checkpoint key, shape) in the order Keras's `set_weights` takes them.
    """

    path: str
    index: int
    kind: str
    units: int = 0
    input_depth: int = 0
    bidirectional: bool = False
    use_bias: bool = True
    reset_after: bool = False
    weights: Tuple[Tuple[str, Tuple[int, ...]], ...] = ()
    return_sequences: bool = False
    merge_mode: str = "concat"
    activation: str = "linear"
    recurrent_activation: str = "sigmoid"
    mask_zero: bool = False
    assumed: Tuple[str, ...] = ()

    @property
    def output_width(self):
        if self.kind == EMBEDDING:
            return self.weights[0][1][1]
        if self.bidirectional and self.merge_mode == "concat":
            return 2 * self.units
        return self.units

    def to_dict(self):
        out = dataclasses.asdict(self)
        out["weights"] = [[k, list(s)] for k, s in self.weights]
        out["assumed"] = list(self.assumed)
        return out

    @classmethod
    def from_dict(cls, d):
        d = dict(d, weights=tuple((k, tuple(s)) for k, s in d["weights"]),
                 assumed=tuple(d["assumed"]))
        return cls(**d)


def layer_of(path, index, variables, shape_of):
    """The KerasLayer of a layer with `variables` {attribute path: key}; ExportError if unknown."""
    missing = sorted(k for k in variables.values() if k not in shape_of)
    if missing:
        raise ExportError(f"{path}: the object graph names {missing[0]!r}, which the "
                          f"checkpoint does not hold; use an intact copy of the checkpoint",
                          tensor=missing[0])
    weights = {name: (key, shape_of[key]) for name, key in variables.items()}
    names = set(weights)
    if names == {"embeddings"} and len(weights["embeddings"][1]) == 2:
        table = weights["embeddings"]
        return KerasLayer(path, index, EMBEDDING, units=table[1][1], weights=(table,))
    if names in ({"kernel"}, {"kernel", "bias"}):
        kernel, bias = weights["kernel"], weights.get("bias")
        if len(kernel[1]) == 2 and (bias is None or bias[1] == kernel[1][1:]):
            return KerasLayer(path, index, DENSE, units=kernel[1][1], input_depth=kernel[1][0],
                              use_bias=bias is not None,
                              weights=tuple(w for w in (kernel, bias) if w))
    directions = {name.split("/", 1)[0] for name in names}
    if directions == {"cell"}:
        return _rnn(path, index, weights, "cell/")
    if directions == {"forward_layer", "backward_layer"}:
        forward = _rnn(path, index, weights, "forward_layer/cell/")
        backward = _rnn(path, index, weights, "backward_layer/cell/")
        if [s for _, s in forward.weights] != [s for _, s in backward.weights]:
            raise ExportError(f"{path}: its forward_layer and backward_layer have other shapes "
                              f"({_shapes(forward.weights)} vs {_shapes(backward.weights)}): "
                              f"no Bidirectional the export builds")
        return dataclasses.replace(forward, bidirectional=True,
                                   weights=forward.weights + backward.weights)
    raise ExportError(_unknown(path, weights))


def _rnn(path, index, weights, under):
    """The KerasLayer of the RNN cell whose weights are `weights[under + name]`."""
    cell = {n[len(under):]: w for n, w in weights.items() if n.startswith(under)}
    if not {"kernel", "recurrent_kernel"} <= set(cell) <= {"kernel", "recurrent_kernel", "bias"}:
        raise ExportError(_unknown(path, weights))
    kernel, recurrent, bias = cell["kernel"][1], cell["recurrent_kernel"][1], cell.get("bias")
    units = recurrent[0] if len(recurrent) == 2 else 0
    blocks = recurrent[1] // units if units and recurrent[1] % units == 0 else 0
    if len(kernel) != 2 or kernel[1:] != recurrent[1:] or blocks not in _GATE_BLOCKS:
        raise ExportError(
            f"{path}: {under}kernel {list(kernel)} and recurrent_kernel {list(recurrent)} are "
            f"not 1, 3 or 4 gate blocks of {units or '?'} units (SimpleRNN, GRU, LSTM): "
            f"the layer's kind cannot be told, so it is not exported")
    kind = _GATE_BLOCKS[blocks]
    reset_after = bias is not None and kind == GRU and bias[1] == (2, recurrent[1])
    if bias is not None and bias[1] != (recurrent[1],) and not reset_after:
        raise ExportError(f"{path}: {under}bias {list(bias[1])} fits no {kind}({units}) "
                          f"(bias [{recurrent[1]}]" + (f" or [2, {recurrent[1]}]"
                                                       if kind == GRU else "") +
                          "): the layer's kind cannot be told", tensor=bias[0])
    ordered = tuple(w for w in (cell["kernel"], cell["recurrent_kernel"], bias) if w)
    return KerasLayer(path, index, kind, units=units, input_depth=kernel[0],
                      use_bias=bias is not None, reset_after=reset_after, weights=ordered)


def _shapes(weights):
    return " ".join("x".join(map(str, s)) for _, s in weights)


def _unknown(path, weights):
    held = ", ".join(f"{n} {list(w[1])}" for n, w in sorted(weights.items()))
    return (f"{path}: holds {held}: no layer the export knows (Embedding, Dense, SimpleRNN, "
            f"GRU, LSTM, Bidirectional of one of them) has these weights, so its kind cannot "
            f"be told; save the model from tf_keras as .keras (model.save) instead")


def connect(layers, assumptions):
    """`layers` with the settings the checkpoint cannot tell, checked to form one chain."""
    a = assumptions
    for name, value, allowed in (("activation", a.activation, ACTIVATIONS),
                                 ("recurrent activation", a.recurrent_activation, ACTIVATIONS),
                                 ("Dense activation", a.dense_activation, ACTIVATIONS),
                                 ("merge mode", a.merge_mode or "concat", MERGE_MODES)):
        if value not in allowed:
            raise ExportError(f"the {name} {value!r} is none the export builds: pass one of "
                              f"{', '.join(allowed)}")
    weighted = [i for i, layer in enumerate(layers) if layer.kind != DROPOUT]
    last_rnn = max((i for i in weighted if layers[i].kind in RNNS), default=None)
    out, width, before = list(layers), None, None
    for position, i in enumerate(weighted):
        layer = layers[i]
        after = layers[weighted[position + 1]] if position + 1 < len(weighted) else None
        if layer.kind == EMBEDDING and position:
            raise ExportError(f"{layer.path}: an Embedding after {before.path}: the export "
                              f"builds an Embedding as the first layer only")
        if width is not None and layer.input_depth != width:
            raise ExportError(
                f"{layer.path} takes inputs of depth {layer.input_depth} but {before.path} "
                f"gives {width}: the layers do not form one chain (a model with branches, or "
                f"a layer without weights that changes the depth?), so it is not exported")
        layer = _settled(layer, a, after, i == last_rnn)
        out[i], width, before = layer, layer.output_width, layer
    return out


def _settled(layer, a, after, last_rnn):
    """`layer` with its activations, return_sequences, merge_mode and what was assumed."""
    if layer.kind == EMBEDDING:
        return dataclasses.replace(layer, mask_zero=a.mask_zero, assumed=(
            f"mask_zero={a.mask_zero} (--mask-zero)",))
    if layer.kind == DENSE:
        return dataclasses.replace(layer, activation=a.dense_activation, assumed=(
            f"activation {a.dense_activation} (--dense-activation)",))
    assumed = [f"activation {a.activation} (--activation)"]
    if layer.kind != SIMPLE_RNN:
        assumed.append(f"recurrent_activation {a.recurrent_activation} "
                       f"(--recurrent-activation)")
    sequences = a.return_sequences if last_rnn else True
    assumed.append(f"return_sequences={sequences} (--return-sequences)" if last_rnn else
                   "return_sequences=True (an RNN layer follows)")
    merge = "concat"
    if layer.bidirectional:
        merge, told = _merge_mode(layer, a.merge_mode, after)
        assumed.append(f"merge_mode {merge} ({told})")
    return dataclasses.replace(layer, activation=a.activation,
                               recurrent_activation=a.recurrent_activation,
                               return_sequences=sequences, merge_mode=merge,
                               assumed=tuple(assumed))


def _merge_mode(layer, given, after):
    """(merge_mode, how it was told) of a Bidirectional followed by `after` (or None)."""
    if given is not None:
        return given, "--merge-mode"
    if after is None:
        return "concat", "assumed; --merge-mode"
    if after.input_depth == 2 * layer.units:
        return "concat", f"the next layer's depth {after.input_depth}"
    if after.input_depth == layer.units:
        raise ExportError(f"{layer.path}: the next layer takes depth {layer.units}, the width "
                          f"of one direction: merge_mode sum, mul or ave, which the checkpoint "
                          f"cannot tell: pass --merge-mode")
    return "concat", "assumed; --merge-mode"  # the chain check names the mismatch
