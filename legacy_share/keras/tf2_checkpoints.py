"""A TF 2 tf.keras TF-format checkpoint (`model.save_weights(path)`) read as a chain of layers.

The object graph saved under `_CHECKPOINTABLE_OBJECT_GRAPH` (TF's TrackableObjectGraph)
gives the model's layers in order (`layer-N`, those with weights also `layer_with_weights-K`)
and each weight's attribute name; the shapes give the layer kinds:

    embeddings [V, D]                                     -> Embedding
    cell/{kernel [D, G*U], recurrent_kernel [U, G*U], bias}: G = 1, 3, 4
                                                          -> SimpleRNN, GRU, LSTM
      (GRU: bias [2, 3U] -> reset_after=True, [3U] -> False)
    forward_layer/cell/..., backward_layer/cell/...       -> Bidirectional of that RNN
    kernel [D, U] (, bias [U])                            -> Dense

What a checkpoint does not store (activations, return_sequences, merge_mode, mask_zero,
stateful, go_backwards, what a layer without weights does) is taken from `Assumptions` and
listed in the plan. Pure: no TensorFlow, no Keras.
"""

import dataclasses
import re
from typing import Optional, Tuple

from legacy_share import generations
from legacy_share.errors import CheckpointError, ExportError
from legacy_share.reports import JsonReport

__all__ = ["Assumptions", "KerasLayer", "KerasCheckpointPlan", "ObjectGraph",
           "parse_object_graph", "plan_keras_checkpoint", "describe_layers", "ACTIVATIONS",
           "MERGE_MODES"]

EMBEDDING, DENSE, SIMPLE_RNN, GRU, LSTM, DROPOUT = (
    "Embedding", "Dense", "SimpleRNN", "GRU", "LSTM", "Dropout")
RNNS = (SIMPLE_RNN, GRU, LSTM)
_GATE_BLOCKS = {1: SIMPLE_RNN, 3: GRU, 4: LSTM}
_VALUE = "VARIABLE_VALUE"
_LAYER = re.compile(r"layer-(\d+)$")
_WEIGHTED = re.compile(r"layer_with_weights-(\d+)$")
_OPTIMIZER = ("optimizer", ".OPTIMIZER_SLOT")
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
class ObjectGraph:
    """The object graph: per node, its children {local name: node id} and its variable's key."""

    children: Tuple[Tuple[Tuple[str, int], ...], ...]
    keys: Tuple[Optional[str], ...]


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


@dataclasses.dataclass(frozen=True)
class KerasCheckpointPlan(JsonReport):
    """The export of a tf.keras checkpoint: the model at `model_path`, its `layers` in order."""

    prefix: str
    model_path: str
    layers: Tuple[KerasLayer, ...]
    dtype: str
    assumed: Tuple[str, ...]
    not_exported: Tuple[Tuple[str, str], ...]
    refused: Optional[str] = None
    sequential: bool = True  # no input layer in the object graph (a Sequential model)

    def refusal(self):
        """The one line the export is refused with, or None."""
        return f"{self.prefix}: {self.refused}" if self.refused else None

    @property
    def embedding(self):
        return self.layers[0] if self.layers and self.layers[0].kind == EMBEDDING else None

    def to_dict(self):
        return dict(checkpoint=self.prefix, kind="tf.keras checkpoint",
                    model=self.model_path or "(root)", dtype=self.dtype,
                    layers=[layer.to_dict() for layer in self.layers],
                    assumed=list(self.assumed), refusal=self.refusal(),
                    not_exported=[dict(name=n, reason=r) for n, r in self.not_exported])

    def format_table(self):
        """One row per layer, then what is assumed and the tensors not exported."""
        rows = [("layer", "keras", "units", "depth", "weights", "assumed")]
        for layer in self.layers:
            kind = f"Bidirectional({layer.kind})" if layer.bidirectional else layer.kind
            shapes = " ".join("x".join(map(str, s)) or "scalar" for _, s in layer.weights)
            rows.append((layer.path, kind, str(layer.units or "-"),
                         str(layer.input_depth or "-"), shapes or "-",
                         "; ".join(layer.assumed) or "-"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        lines = [f"tf.keras checkpoint {self.prefix}: model "
                 f"{self.model_path or '(root)'}, {len(self.layers)} layer(s), {self.dtype}"]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1]
                  for r in rows]
        lines += [f"assumed: {a}" for a in self.assumed]
        lines += [f"not exported: {n} ({r})" for n, r in self.not_exported]
        if self.refused:
            lines.append(f"refused: {self.refused}")
        return "\n".join(lines)


def parse_object_graph(data, prefix):
    """The ObjectGraph of the serialized TrackableObjectGraph `data` (bytes).

    Raises:
      CheckpointError: `data` is no object graph.
    """
    # pylint: disable-next=import-outside-toplevel
    from tensorflow.core.protobuf import trackable_object_graph_pb2
    proto = trackable_object_graph_pb2.TrackableObjectGraph()
    try:
        proto.ParseFromString(bytes(data))
    except Exception as exc:  # pylint: disable=broad-except  (protobuf's DecodeError)
        raise CheckpointError(f"{prefix}: {generations.OBJECT_GRAPH_KEY} is no object graph "
                              f"({type(exc).__name__}); use an intact copy of the "
                              f"checkpoint.") from exc
    count = len(proto.nodes)
    children, keys = [], []
    for node in proto.nodes:
        if any(c.node_id >= count for c in node.children):
            raise CheckpointError(f"{prefix}: {generations.OBJECT_GRAPH_KEY} names a node "
                                  f"beyond its {count}; use an intact copy of the checkpoint.")
        children.append(tuple((c.local_name, c.node_id) for c in node.children))
        keys.append(next((a.checkpoint_key for a in node.attributes if a.name == _VALUE), None))
    return ObjectGraph(tuple(children), tuple(keys))


def plan_keras_checkpoint(prefix, specs, graph, assumptions=None, model=None):
    """The KerasCheckpointPlan of a checkpoint with `specs` and object `graph`.

    Args:
      prefix: the checkpoint's prefix (for messages); specs: its TensorSpecs;
      graph: its ObjectGraph; assumptions: an Assumptions or a dict of its fields (None:
        the defaults);
      model: the object path of the model when the checkpoint holds several.
    Returns:
      The plan; its `refused` says why a chain of layers cannot be exported.
    Raises:
      ExportError: no tf.keras model in the graph, or several and `model` names none.
    """
    assumptions = _assumptions(prefix, assumptions)
    shape_of = {s.name: tuple(s.shape) for s in specs}
    root, model_path = _model_node(prefix, graph, model)
    entries = _layer_entries(prefix, graph, root)
    layers, refused = [], None
    leading = 0
    for index, node, weighted in entries:
        path = "/".join(filter(None, [model_path, f"layer-{index}"]))
        if not weighted:
            if not layers and leading == 0:
                leading += 1  # a functional model's InputLayer
                continue
            if assumptions.weightless != "dropout":
                refused = (f"{path} has no weights: a checkpoint cannot tell what it does "
                           f"(Dropout passes its inputs through at inference; Activation, "
                           f"Flatten, Concatenate do not); if it is a Dropout (or any layer "
                           f"that passes its inputs through), pass --weightless dropout")
                break
            layers.append(KerasLayer(path, index, DROPOUT,
                                     assumed=("no weights: a Dropout (identity)",)))
            continue
        path = "/".join(filter(None, [model_path, weighted]))
        try:
            layers.append(_layer(path, index, _variables(graph, node), shape_of))
        except ExportError as exc:
            refused = str(exc)
            break
    if refused is None:
        try:
            layers = _connect(layers, assumptions)
        except ExportError as exc:
            refused = str(exc)
    used = {key for layer in layers for key, _ in layer.weights}
    not_exported = tuple((s.name, _why_left_out(s.name)) for s in specs
                         if s.name not in used and s.name != generations.OBJECT_GRAPH_KEY)
    dtypes = {s.dtype for s in specs if s.name in used}
    if refused is None and (len(dtypes) > 1 or not dtypes <= {"float32", "float64"}):
        refused = (f"its weights are {', '.join(sorted(dtypes))}: the export reads tf.keras "
                   f"checkpoints of float32 or float64 weights only")
    if refused is None and not any(layer.kind in RNNS for layer in layers):
        refused = "the model has no RNN layer (SimpleRNN, GRU, LSTM): nothing to export"
    return KerasCheckpointPlan(prefix, model_path, tuple(layers),
                               min(dtypes) if dtypes else "float32",
                               _global_assumptions(layers, assumptions), not_exported,
                               refused, sequential=leading == 0)


def _assumptions(prefix, given):
    """An Assumptions of `given` (None, an Assumptions, or a dict of its fields)."""
    if given is None or isinstance(given, Assumptions):
        return given or Assumptions()
    try:
        return Assumptions(**dict(given))
    except (TypeError, ValueError) as exc:
        fields = ", ".join(f.name for f in dataclasses.fields(Assumptions))
        raise ExportError(f"{prefix}: assumptions {given!r} are not Assumptions' fields "
                          f"({fields})") from exc


def _model_node(prefix, graph, model):
    """(node id, object path) of the model: the node with `layer_with_weights-K` children."""
    found, seen, queue = [], {0}, [(0, "")]
    while queue:
        node, path = queue.pop(0)
        names = [name for name, _ in graph.children[node]]
        if any(_WEIGHTED.match(n) for n in names):
            found.append((node, path))
            continue
        for name, child in graph.children[node]:
            if child not in seen and name not in _OPTIMIZER:
                seen.add(child)
                queue.append((child, f"{path}/{name}".lstrip("/")))
    if model is not None:
        chosen = [f for f in found if f[1] == model.strip("/")]
        if not chosen:
            raise ExportError(f"{prefix}: no tf.keras model at {model!r}; its models are at "
                              f"{', '.join(repr(p or '(root)') for _, p in found) or 'none'}")
        return chosen[0]
    if not found:
        raise ExportError(f"{prefix}: a TF 2 object-based checkpoint without a tf.keras model "
                          f"(no layer_with_weights-K in its object graph): restore it with "
                          f"tf.train.Checkpoint(...).restore; the export reads checkpoints "
                          f"written by a tf.keras model's save_weights")
    if len(found) > 1:
        raise ExportError(f"{prefix}: holds {len(found)} tf.keras models (at "
                          f"{', '.join(repr(p) for _, p in found)}): pass --stack PATH for one")
    return found[0]


def _layer_entries(prefix, graph, root):
    """[(N, node, `layer_with_weights-K` or None)] of `layer-N` in order; K checked in order."""
    children = graph.children[root]
    weighted = {node: name for name, node in children if _WEIGHTED.match(name)}
    layers = sorted((int(_LAYER.match(n).group(1)), node) for n, node in children
                    if _LAYER.match(n))
    if not layers:  # no `layer-N` edges: the weighted layers alone, in their order
        layers = sorted((int(_WEIGHTED.match(n).group(1)), node)
                        for node, n in weighted.items())
    entries = [(index, node, weighted.get(node)) for index, node in layers]
    order = [int(_WEIGHTED.match(w).group(1)) for _, _, w in entries if w]
    if order != list(range(len(weighted))):
        raise ExportError(f"{prefix}: its layers with weights ({len(weighted)}) are not the "
                          f"model's layer-N in order; the layer chain cannot be told")
    return entries


def _variables(graph, node):
    """{path below `node`: checkpoint key}, each variable under the first path that reaches it."""
    found, seen, queue = {}, {node}, [(node, "")]
    while queue:
        current, path = queue.pop(0)
        if graph.keys[current] is not None and path:
            found[path] = graph.keys[current]
        for name, child in graph.children[current]:
            if child not in seen:
                seen.add(child)
                queue.append((child, f"{path}/{name}".lstrip("/")))
    return found


def _layer(path, index, variables, shape_of):
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


def _connect(layers, assumptions):
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


def _global_assumptions(layers, a):
    notes = ["stateful=False and initial states zero (a stateful model's first batch "
             "computes the same)"]
    if any(layer.kind in RNNS and not layer.bidirectional for layer in layers):
        notes.append("go_backwards=False for RNN layers outside a Bidirectional")
    if any(layer.kind == DROPOUT for layer in layers):
        notes.append("layers without weights are Dropout (--weightless dropout): identity at "
                     "inference")
    return tuple(notes)


def _why_left_out(name):
    if name.startswith("optimizer/") or ".OPTIMIZER_SLOT" in name:
        return "optimizer state"
    if name.startswith("save_counter/"):
        return "the checkpoint's save counter"
    return "not a weight of the model's layers"


def describe_layers(plan):
    """`inspect`'s lines for a tf.keras checkpoint: one per layer, then the refusal if any."""
    lines = []
    for layer in plan.layers:
        kind = layer.kind
        if kind in RNNS:
            kind = f"{kind}({layer.units}" + (", reset_after=True" if layer.reset_after else
                                               "") + ")"
            kind = f"Bidirectional({kind})" if layer.bidirectional else kind
        elif kind == DENSE:
            kind = f"Dense({layer.units})"
        elif kind == DROPOUT:
            kind = "no weights (what it does is not stored: --weightless dropout if a Dropout)"
        weights = ", ".join(
            f"{key.split('/.ATTRIBUTES/')[0].removeprefix(layer.path + '/')} {list(shape)}"
            for key, shape in layer.weights)
        kind = f"{kind}: {weights}" if weights else kind
        lines.append(f"tf.keras layer {layer.path}: {kind}")
    if plan.refused:
        lines.append(f"tf.keras model {plan.model_path or '(root)'}: not exportable: "
                     f"{plan.refused}")
    return tuple(lines)
