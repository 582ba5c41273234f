"""What an old graph's MetaGraphDef says that its checkpoint cannot: the contrib block cells'
cell clip, forget bias and peepholes, and the TensorFlow version that wrote it.

The `.meta` is parsed as a protocol buffer; it is never imported nor run.
"""

__all__ = ["block_cell_settings", "block_cell_notes"]

# Ops of the contrib block cells and the attrs that change their equations.
BLOCK_OPS = ("LSTMBlockCell", "BlockLSTM", "BlockLSTMV2", "GRUBlockCell")
_ATTRS = ("forget_bias", "cell_clip", "use_peephole")


def block_cell_settings(meta):
    """The block-cell ops of a MetaGraphDef and their settings.

    Args:
      meta: a MetaGraphDef proto (verifying.read_meta_graph).

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

