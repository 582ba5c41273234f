"""What an old graph's MetaGraphDef says that its checkpoint cannot: the contrib block cells'
cell clip, forget bias and peepholes, the layout of cuDNN buffers, and the TensorFlow version
that wrote it.

The `.meta` is parsed as a protocol buffer; it is never imported nor run.
"""

from legacy_share.errors import PlanError

__all__ = ["block_cell_settings", "block_cell_notes", "cudnn_layouts"]

# Ops of the contrib block cells and the attrs that change their equations.
BLOCK_OPS = ("LSTMBlockCell", "BlockLSTM", "BlockLSTMV2", "GRUBlockCell")
_ATTRS = ("forget_bias", "cell_clip", "use_peephole")


def block_cell_settings(meta):
    """The block-cell ops of a MetaGraphDef and their settings.

    Args:
      meta: a MetaGraphDef proto (metagraph.read_meta_graph).

    Returns:
      (tensorflow_version or "", [(scope, op type, {attr: value})]) with one entry per scope
      and setting, in scope order; `scope` is the op's name without its last component.
    """
    nodes = list(meta.graph_def.node)
    for function in meta.graph_def.library.function:
        nodes.extend(function.node_def)
    found = {}
    for node in nodes:
        if node.op not in BLOCK_OPS:
            continue
        settings = {}
        for attr in _ATTRS:
            if attr in node.attr:
                value = node.attr[attr]
                settings[attr] = value.b if attr == "use_peephole" else round(value.f, 6)
        scope = node.name.rsplit("/", 1)[0] if "/" in node.name else ""
        key = (scope, node.op, tuple(sorted(settings.items())))
        found.setdefault(key, settings)
    version = meta.meta_info_def.tensorflow_version
    return version, [(scope, op, settings) for (scope, op, _), settings in sorted(found.items())]


def block_cell_notes(meta, meta_path):
    """Plan notes, one line per block-cell op setting of MetaGraphDef `meta` read from `meta_path`."""
    version, found = block_cell_settings(meta)
    written = f" (written by TF {version})" if version else ""
    notes = []
    for scope, op, settings in found:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))
        arguments = []
        if settings.get("cell_clip", -1.0) > 0:
            arguments.append(f"cell_clip={settings['cell_clip']}")
        if "forget_bias" in settings:
            arguments.append(f"forget_bias={settings['forget_bias']}")
        if settings.get("use_peephole"):
            arguments.append("use_peepholes=True")
        build = "GRUCell(n)" if op == "GRUBlockCell" else f"LSTMCell(n, {', '.join(arguments)})"
        notes.append(f"{meta_path}{written}: {op} op in {scope or '<root>'} runs with {shown}; "
                     f"build {build} to compute the same")
    if not found:
        notes.append(f"{meta_path}{written}: no block-cell op; the cells' run-time settings "
                     f"are the defaults of the graph's own code")
    return notes



# cuDNN ops whose first three inputs are num_layers, num_units, input_size, and the RNN ops.
CUDNN_SIZE_OPS = ("CudnnRNNParamsSize", "CudnnRNNParamsToCanonical",
                  "CudnnRNNParamsToCanonicalV2", "CudnnRNNCanonicalToParams",
                  "CudnnRNNCanonicalToParamsV2")
CUDNN_RNN_OPS = ("CudnnRNN", "CudnnRNNV2", "CudnnRNNV3")
_CUDNN_ATTRS = ("rnn_mode", "input_mode", "direction")


def cudnn_layouts(meta):
    """Layout fields of the cuDNN ops of MetaGraphDef `meta` -> [dict], never running it.

    Each dict has kind, layers, units, input_size and directions (cudnn.Layout's fields),
    from a size op whose three size inputs are constants. Raises PlanError for what cannot
    be migrated (skip_input mode, projections, a ROCm build) and for a damaged op.
    """
    graph = meta.graph_def
    nodes = {node.name: node for node in graph.node}
    version = f"{meta.meta_info_def.tensorflow_version} " \
              f"{meta.meta_info_def.tensorflow_git_version}"
    found = []
    for node in graph.node:
        if node.op not in CUDNN_SIZE_OPS + CUDNN_RNN_OPS:
            continue
        attrs = _cudnn_attrs(node)
        if attrs.get("input_mode") == "skip_input":
            raise PlanError(f"graph node {node.name} uses input_mode skip_input, which adds the "
                            f"input without weights; only linear_input buffers can be unpacked")
        if "num_proj" in node.attr and node.attr["num_proj"].i:
            raise PlanError(f"graph node {node.name} projects its output (num_proj "
                            f"{node.attr['num_proj'].i}); such buffers are not supported")
        if "rocm" in version.lower():
            raise PlanError(f"the graph was written by a ROCm build ({version.strip()}): MIOpen "
                            f"orders the gates of its buffers differently; not supported")
        if node.op in CUDNN_RNN_OPS:
            continue
        if len(node.input) < 3:
            raise PlanError(f"graph node {node.name} ({node.op}) has {len(node.input)} "
                            f"input(s), the op takes num_layers, num_units and input_size; the "
                            f".meta is damaged: give the one Saver.save wrote, or --cudnn flags")
        sizes = [_constant(nodes, node.input[i]) for i in range(3)]
        if None in sizes or "rnn_mode" not in attrs:
            continue
        found.append(dict(kind=attrs["rnn_mode"], layers=sizes[0], units=sizes[1],
                          input_size=sizes[2],
                          directions=2 if attrs.get("direction") == "bidirectional" else 1))
    return found


def _cudnn_attrs(node):
    attrs = {}
    for key in _CUDNN_ATTRS:
        if key not in node.attr:
            continue
        raw = node.attr[key].s
        try:
            attrs[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise PlanError(f"graph node {node.name} has {key} {raw[:40]!r}, which is not text; "
                            f"the .meta is damaged: give the one Saver.save wrote, or --cudnn "
                            f"flags") from None
    return attrs


def _constant(nodes, input_name):
    """The one positive integer a Const node holds, else None."""
    node = nodes.get(input_name.lstrip("^").split(":")[0])
    if node is None or node.op != "Const":
        return None
    tensor = node.attr["value"].tensor
    values = tensor.int_val or tensor.int64_val
    return int(values[0]) if len(values) == 1 and values[0] > 0 else None
