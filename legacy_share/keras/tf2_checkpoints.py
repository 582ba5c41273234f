"""A TF 2 tf.keras TF-format checkpoint (`model.save_weights(path)`) read as a chain of layers.

The object graph saved under `_CHECKPOINTABLE_OBJECT_GRAPH` (TF's TrackableObjectGraph)
gives the model's layers in order (`layer-N`, those with weights also `layer_with_weights-K`)
and each weight's attribute name; `tf2_layers` tells each layer's kind from them and settles
what a checkpoint does not store (activations, return_sequences, merge_mode, mask_zero; what a
layer without weights does) from `Assumptions`, listed in the plan. Pure: no TensorFlow, no
Keras (TensorFlow's protobuf module parses the graph).
"""

import dataclasses
import re
from typing import Optional, Tuple

from legacy_share import generations
from legacy_share.errors import CheckpointError, ExportError
from legacy_share.keras import tf2_layers
from legacy_share.keras.tf2_layers import DENSE, DROPOUT, EMBEDDING, RNNS, Assumptions, \
    KerasLayer
from legacy_share.reports import JsonReport

__all__ = ["KerasCheckpointPlan", "ObjectGraph", "parse_object_graph", "plan_keras_checkpoint",
           "describe_layers"]

_VALUE = "VARIABLE_VALUE"
_LAYER = re.compile(r"layer-(\d+)$")
_WEIGHTED = re.compile(r"layer_with_weights-(\d+)$")
_OPTIMIZER = ("optimizer", ".OPTIMIZER_SLOT")


@dataclasses.dataclass(frozen=True)
class ObjectGraph:
    """The object graph: per node, its children {local name: node id} and its variable's key."""

    children: Tuple[Tuple[Tuple[str, int], ...], ...]
    keys: Tuple[Optional[str], ...]


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
            layers.append(tf2_layers.layer_of(path, index, _variables(graph, node), shape_of))
        except ExportError as exc:
            refused = str(exc)
            break
    if refused is None:
        try:
            layers = tf2_layers.connect(layers, assumptions)
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
    if isinstance(model, (list, tuple)):  # --stack, which chains TF1 stacks, given as a list
        if len(model) > 1:
            raise ExportError(f"{prefix}: a tf.keras checkpoint's model is one chain of layers; "
                              f"give --stack once (the model's path), not {len(model)} times")
        model = model[0] if model else None
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
