"""The migrator's public API: inspect, plan, migrate and unshare checkpoints.

The command line (`legacy_share.cli`) is a thin layer over these functions.
"""

import contextlib
import dataclasses
import os
import shutil
from typing import Optional, Tuple

import numpy as np

from legacy_share import cudnn_models
from legacy_share import errors
from legacy_share import file_systems
from legacy_share import generations
from legacy_share import graph_names
from legacy_share import planning
from legacy_share import tables
from legacy_share import values
from legacy_share.reading import open_checkpoint
from legacy_share.reports import JsonReport
from legacy_share.writing import execute
from legacy_share._tf import tf

__all__ = [
    "Inspection",
    "InspectedGroup",
    "InspectedVariable",
    "inspect_checkpoint",
    "plan_checkpoint",
    "migrate",
    "unshare",
]

@dataclasses.dataclass(frozen=True)
class InspectedVariable:
    """A checkpoint tensor: `group` is its layer group's key (None if it has no layer)."""

    name: str
    shape: Tuple[int, ...]
    dtype: str
    nbytes: Optional[int]
    group: Optional[str] = None
    layer: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class InspectedGroup:
    """Tensors that differ only by layer index; `key` is the name they would be merged into.

    `shareable`: same shape and dtype in every layer; `max_abs_difference`: largest element-wise
    |layer_k - first layer|, as `--strategy strict` compares it (`values.max_difference`; None
    when not computed: not shareable, not numeric, or data missing); `route`: what `migrate`
    does with the group by default and which option serves it otherwise
    (planning.Route.text); `nbytes`: each layer's size in bytes.
    """

    key: str
    layers: Tuple[int, ...]
    names: Tuple[str, ...]
    shapes: Tuple[Tuple[int, ...], ...]
    dtype: str
    shareable: bool
    max_abs_difference: Optional[float]
    route: str = ""
    nbytes: Tuple[Optional[int], ...] = ()


@dataclasses.dataclass(frozen=True)
class Inspection(JsonReport):
    """What `inspect_checkpoint` found: every variable, and the layer groups among them."""

    checkpoint: str
    variables: Tuple[InspectedVariable, ...]
    groups: Tuple[InspectedGroup, ...]
    values_read: bool
    cudnn: Tuple[cudnn_models.Model, ...] = ()
    notes: Tuple[str, ...] = ()

    def to_dict(self):
        return {
            "checkpoint": self.checkpoint,
            "values_read": self.values_read,
            "variables": [{"name": v.name, "shape": list(v.shape), "dtype": v.dtype,
                           "bytes": v.nbytes, "group": v.group, "layer": v.layer}
                          for v in self.variables],
            "groups": [{"key": g.key, "layers": list(g.layers), "names": list(g.names),
                        "shapes": [list(s) for s in g.shapes], "dtype": g.dtype,
                        "shareable": g.shareable,
                        "max_abs_difference": values.json_number(g.max_abs_difference),
                        "route": g.route, "bytes": list(g.nbytes)}
                       for g in self.groups],
            "cudnn": [{"buffer": m.buffer, "scope": m.scope, "canonical": list(m.canonical),
                       "slots": list(m.slots), "layout_from": m.source,
                       "route": _cudnn_route(m), **dataclasses.asdict(m.layout)}
                      for m in self.cudnn],
            "notes": list(self.notes),
        }

    def format_table(self):
        """Groups first (key, layers, shape, dtype, bytes per layer, shareable, max |diff|,
        route), then the variables without a layer, then a summary line."""
        rows = [("GROUP (merged name)", "LAYERS", "SHAPE", "DTYPE", "BYTES/LAYER", "SHAREABLE",
                 "MAX|DIFF|", "ROUTE")]
        for g in self.groups:
            if g.shareable:
                shape, size = tables.format_shape(g.shapes[0]), tables.format_bytes(g.nbytes[0])
            else:
                shape = " | ".join(tables.format_shape(s) for s in g.shapes)
                size = " | ".join(tables.format_bytes(n) for n in g.nbytes)
            diff = "-" if g.max_abs_difference is None else f"{g.max_abs_difference:.6g}"
            rows.append((g.key, ",".join(map(str, g.layers)), shape, g.dtype, size,
                         "yes" if g.shareable else "NO", diff, g.route))
        lines = tables.format_columns(rows)
        others = [v for v in self.variables if v.group is None]
        if others:
            lines.append("")
            header = ("VARIABLE (no layer)", "SHAPE", "DTYPE", "BYTES")
            lines.extend(tables.format_columns([header] + [
                (v.name, tables.format_shape(v.shape), v.dtype, tables.format_bytes(v.nbytes))
                for v in others]))
        if self.cudnn:
            lines.append("")
            header = ("CUDNN BUFFER", "MODE", "LAYERS", "UNITS", "INPUT", "DIRECTIONS",
                      "LAYOUT FROM", "ROUTE")
            lines.extend(tables.format_columns([header] + [
                (m.buffer or f"(none: {m.scope or '<root>'} canonical tensors)", m.layout.kind,
                 m.layout.layers, m.layout.units, m.layout.input_size, m.layout.directions,
                 m.source, _cudnn_route(m)) for m in self.cudnn]))
        lines.extend(f"note: {note}" for note in self.notes)
        total = sum(v.nbytes or 0 for v in self.variables)
        lines.append("")
        lines.append(f"{self.checkpoint}: {len(self.variables)} variable(s), "
                     f"{tables.format_bytes(total)}; {len(self.groups)} layer group(s), "
                     f"{sum(not g.shareable for g in self.groups)} not shareable"
                     + ("" if self.values_read else "; data files missing, differences not computed"))
        return "\n".join(lines)


def inspect_checkpoint(path, group_patterns=(), renames=(), excludes=(), share=True,
                       share_from=0, meta=None, cudnn=None, cudnn_buffer=None):
    """Lists the variables of a checkpoint grouped by layer, as the planner groups them.

    Args:
      path: checkpoint prefix, folder, V1 file, `.index` or `.data-*` path.
      group_patterns, renames, excludes: as in `plan_checkpoint`.
      share, share_from: as in `plan_checkpoint`; the route column says what they do with
        each group, and what works otherwise.
      meta, cudnn, cudnn_buffer: as in `plan_checkpoint`; cuDNN models are listed with their
        layout (a buffer whose layout cannot be told gets a note instead), and their
        canonical tensors are checked against the buffer when the data files are there.

    Returns:
      An Inspection. A group's key is the name it would be merged into by default.
      Differences between layers are computed one tensor at a time (not for sharded
      tensors, nor when the data files are missing).

    Raises:
      CheckpointError: the checkpoint cannot be read; PlanError: an option is invalid.
    """
    ckpt = open_checkpoint(path)
    stored = {spec.name: spec for spec in ckpt.specs}
    with _naming(ckpt):
        found = planning.find_layer_groups(ckpt.specs, group_patterns=group_patterns,
                                           renames=renames, excludes=excludes)
    if isinstance(share_from, bool) or not isinstance(share_from, int) or share_from < 0:
        raise errors.PlanError(f"share_from must be an integer >= 0, got {share_from!r}")
    values_read = not ckpt.missing_files()
    groups, membership = [], {}
    for group in found:
        specs = [spec for _, spec in group.members]
        shareable = len({(s.shape, s.dtype) for s in specs}) == 1
        whole = all(stored[s.name].shape == s.shape for s in specs)  # False: sharded members
        difference = None
        if shareable and whole and values_read:
            difference = values.max_layer_difference(ckpt, [s.name for s in specs], specs[0].dtype)
        for layer, spec in group.members:
            membership[spec.name] = (group.name, layer)
        route = planning.route([(layer, s.shape, s.dtype) for layer, s in group.members],
                               share_from, share)
        groups.append(InspectedGroup(
            group.name, tuple(layer for layer, _ in group.members), tuple(s.name for s in specs),
            tuple(s.shape for s in specs), specs[0].dtype, shareable, difference, route.text,
            tuple(_nbytes(s) for s in specs)))
    variables = tuple(
        InspectedVariable(spec.name, spec.shape, spec.dtype, _nbytes(spec),
                          *membership.get(spec.name, (None, None)))
        for spec in ckpt.specs)
    models, notes = _inspect_cudnn(ckpt, meta, cudnn, cudnn_buffer, values_read)
    object_key = generations.object_based_evidence(spec.name for spec in ckpt.specs)
    if object_key is not None:
        notes = (generations.OBJECT_BASED_NOTE.format(key=object_key),) + tuple(notes)
    return Inspection(ckpt.prefix, variables, tuple(groups), values_read, models, notes)


def _inspect_cudnn(ckpt, meta, layout, buffer_name, values_read):
    graph, _ = read_old_graph(meta)
    try:
        models = cudnn_models.find_models(
            ckpt.specs, cudnn_models.layouts_from_meta(graph) if graph is not None else (),
            layout, buffer_name, prefix=ckpt.prefix)
    except errors.LayoutUnknownError as exc:  # only what was not given; misfits are errors
        return (), (str(exc),)
    if values_read:
        cudnn_models.check_canonical(ckpt, models)
    return tuple(models), ()


def _cudnn_route(model):
    cell = cudnn_models.TF1_CELLS[model.layout.kind]
    if cell is None:
        return "export only (no TF1 cell computes a cuDNN GRU)"
    return f"migrate -> {cell} per layer" + (
        "" if model.layout.input_size == model.layout.units * model.layout.directions
        else " (--no-share: layer 0 reads the input)")


def plan_checkpoint(src, strategy="first", group_patterns=(), renames=(), excludes=(),
                    drop_optimizer_state=False, tolerance=0.0, share=True, share_from=0,
                    meta=None, cudnn=None, cudnn_buffer=None):
    """Plans the migration of a checkpoint from its metadata only (data files not needed).

    Args:
      src: the legacy checkpoint (prefix, folder, V1 file, `.index`).
      strategy, group_patterns, renames, excludes, drop_optimizer_state, tolerance, share,
        share_from: as in `planning.plan_migration`.
      meta: the old graph's MetaGraphDef (`.meta`), or None; its block-cell settings
        (cell clip, forget bias, peepholes) become plan notes, and its cuDNN ops give the
        layout of a cuDNN buffer. It is parsed, never run.
      cudnn: a `cudnn.Layout` for a cuDNN buffer whose layout the checkpoint cannot tell;
        cudnn_buffer: that buffer's name when it does not give itself away. A cuDNN buffer
        is migrated as TF1 cells (legacy_share.cudnn_models).

    Returns:
      The Plan.

    Raises:
      CheckpointError: the checkpoint or the .meta cannot be read; PlanError (naming the
        checkpoint, `tensor` and `file` set): the migration cannot be planned.
    """
    reader, notes = open_for_planning(src, meta, cudnn, cudnn_buffer)
    return plan_for(reader, strategy=strategy, group_patterns=group_patterns,
                    renames=renames, excludes=excludes,
                    drop_optimizer_state=drop_optimizer_state, tolerance=tolerance,
                    share=share, share_from=share_from, notes=notes)


def migrate(src, dst, strategy="first", group_patterns=(), renames=(), excludes=(),
            drop_optimizer_state=False, tolerance=0.0, force=False, progress=False, share=True,
            share_from=0, meta=None, cudnn=None, cudnn_buffer=None):
    """Writes a checkpoint migrated to today's names as a V2 checkpoint.

    Args:
      src: the legacy checkpoint; only ever read.
      dst: the output prefix, as `Saver.save` takes it.
      force: replace an existing output; progress: print progress to stderr.
      Others: as in `plan_checkpoint`.

    Returns:
      The Plan executed. The output is verified by read-back before it is moved into place.

    Raises:
      CheckpointError, PlanError, LayersDifferError (strict), DestinationExistsError,
      VerificationError; after a failure before the index is in place nothing new is left
      at `dst` (see writing.execute).
    """
    reader, notes = open_for_planning(src, meta, cudnn, cudnn_buffer)
    plan = plan_for(reader, strategy=strategy, group_patterns=group_patterns, renames=renames,
                    excludes=excludes, drop_optimizer_state=drop_optimizer_state,
                    tolerance=tolerance, share=share, share_from=share_from, notes=notes)
    return execute(plan, reader, dst, force=force, progress=progress)


def unshare(src, dst, layers, group_patterns=(), force=False, progress=False, share_from=0):
    """Writes a shared checkpoint with its shared tensors copied to every layer.

    Args:
      src: a shared checkpoint (layers below `share_from` per layer, layer `share_from` shared).
      dst: the output prefix.
      layers: the number of layers to write.
      group_patterns: as in `plan_checkpoint`: their index components are unshared too.
      share_from: the inverse of migrate's `share_from`: layer `share_from`'s tensors are
        copied to layers share_from + 1 .. layers - 1, the layers below it are kept.

    Returns:
      The Plan executed.

    Raises:
      As `migrate`.
    """
    ckpt = open_checkpoint(src)
    with _naming(ckpt):
        _, size = planning.unshare_size(ckpt.specs, layers, group_patterns, share_from)
        _check_free_space(dst, size, f"unsharing {ckpt.prefix} into {layers} layers")
        plan = planning.plan_unshare(ckpt.specs, layers, group_patterns=group_patterns,
                                     share_from=share_from)
        plan = _check_names(plan, ckpt, dict(group_patterns=group_patterns), layers)
    return execute(plan, ckpt, dst, force=force, progress=progress)


def _check_free_space(dst, size, what):
    """Raises CheckpointError when the file system of `dst` has fewer than `size` bytes free."""
    if file_systems.is_url(dst):  # a bucket tells no free space; the first failed write stops
        return
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(os.fspath(dst))))
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:  # unknown: the writer still stops on the first failed write
        return
    if size > free:
        raise errors.CheckpointError(
            f"{dst}: {what} writes at least {tables.format_bytes(size)} ({size:,} bytes), and "
            f"{folder} has {tables.format_bytes(free)} free; nothing was written: free space, "
            f"write elsewhere, or check --layers")


def plan_for(ckpt, **options):
    """`planning.plan_migration` over an open checkpoint; a PlanError names the checkpoint."""
    with _naming(ckpt):
        plan = planning.plan_migration(ckpt.specs, **options)
        return _check_names(plan, ckpt, options)


def _check_names(plan, ckpt, options, layers=None):
    """`plan` with its stacks' names checked against the graphs TensorFlow builds today."""
    rules = planning.Rules(options.get("group_patterns", ()), options.get("renames", ()),
                           options.get("excludes", ()))
    return graph_names.check_plan(plan, [s.name for s in ckpt.specs], rules, layers)


@contextlib.contextmanager
def _naming(ckpt):
    """Prefixes a PlanError from the pure planner with the checkpoint it was planning for."""
    try:
        yield
    except errors.PlanError as exc:
        raise type(exc)(f"{ckpt.prefix}: {exc}", tensor=exc.tensor,
                        file=ckpt.prefix) from exc


def open_for_planning(src, meta=None, cudnn=None, cudnn_buffer=None):
    """Opens checkpoint `src` as the planner sees it -> (reader, plan notes).

    The reader is the Checkpoint, or a view of it in which cuDNN buffers read as TF1 cell
    tensors (cudnn_models.open_cudnn); `meta` adds the old graph's block-cell settings as notes.
    """
    ckpt = open_checkpoint(src)
    graph, graph_notes = read_old_graph(meta)
    reader, notes = cudnn_models.open_cudnn(ckpt, graph, cudnn, cudnn_buffer)
    return reader, tuple(notes) + graph_notes


def read_old_graph(meta):
    """The old graph's MetaGraphDef (parsed, never run) and the plan notes it gives.

    Args:
      meta: the `.meta` path, or None.
    Returns:
      (MetaGraphDef, notes on its block-cell ops' settings), or (None, ()) without `meta`.
    Raises:
      CheckpointError: the file cannot be read or parsed (verifying.read_meta_graph).
    """
    if meta is None:
        return None, ()
    # pylint: disable=import-outside-toplevel
    from legacy_share.graph_settings import block_cell_notes
    from legacy_share.verifying import read_meta_graph
    graph = read_meta_graph(meta)
    return graph, tuple(block_cell_notes(graph, meta))


def _nbytes(spec):
    if spec.dtype in ("string", "resource", "variant"):
        return None
    return int(np.prod(spec.shape, dtype=np.int64)) * tf.as_dtype(spec.dtype).size
