"""The migrator's public API: inspect, plan, migrate and unshare checkpoints.

The command line (`legacy_share.cli`) is a thin layer over these functions.
"""

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
from legacy_share import opening
from legacy_share import tables
from legacy_share import values
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
        """The table `legacy-share inspect` prints (tables.format_inspection)."""
        return tables.format_inspection(self, [_cudnn_route(m) for m in self.cudnn])


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
    opened = opening.open_for_planning(path, meta, cudnn, cudnn_buffer)
    ckpt = opened.checkpoint
    stored = {spec.name: spec for spec in ckpt.specs}
    with opening.naming_errors(ckpt.prefix):
        found = planning.find_layer_groups(ckpt.specs, group_patterns=group_patterns,
                                           renames=renames, excludes=excludes)
    planning.check_share_from(share_from)
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
    models, notes = _inspect_cudnn(opened)
    object_key = generations.object_based_evidence(spec.name for spec in ckpt.specs)
    if object_key is not None:
        # pylint: disable-next=import-outside-toplevel
        from legacy_share.keras import tf2_exporting
        notes = ((generations.OBJECT_BASED_NOTE.format(key=object_key),)
                 + tf2_exporting.inspect_lines(ckpt) + tuple(notes))
    return Inspection(ckpt.prefix, variables, tuple(groups), values_read, models, notes)


def _inspect_cudnn(opened):
    """(cuDNN models, notes): a layout that cannot be told is a note; misfits are errors."""
    _, unknown = opened.cudnn_models()
    if unknown is not None:
        return (), (str(unknown),)
    return opened.checked_cudnn_models(), ()


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
    opened = opening.open_for_planning(src, meta, cudnn, cudnn_buffer)
    _, plan = plan_opened(opened, strategy=strategy, group_patterns=group_patterns,
                          renames=renames, excludes=excludes,
                          drop_optimizer_state=drop_optimizer_state, tolerance=tolerance,
                          share=share, share_from=share_from)
    return plan


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
      CheckpointError, PlanError, LayersDifferError (strict), OutputError (the output cannot
      be written there; DestinationExistsError: it exists), VerificationError; after a
      failure before the index is in place nothing new is left at `dst` (see
      writing.execute).
    """
    opened = opening.open_for_planning(src, meta, cudnn, cudnn_buffer)
    reader, plan = plan_opened(
        opened, strategy=strategy, group_patterns=group_patterns, renames=renames,
        excludes=excludes, drop_optimizer_state=drop_optimizer_state, tolerance=tolerance,
        share=share, share_from=share_from)
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
    ckpt = opening.open_for_planning(src).checkpoint
    with opening.naming_errors(ckpt.prefix):
        _, size = planning.unshare_size(ckpt.specs, layers, group_patterns, share_from)
        _check_free_space(dst, size, f"unsharing {ckpt.prefix} into {layers} layers")
        plan = planning.plan_unshare(ckpt.specs, layers, group_patterns=group_patterns,
                                     share_from=share_from)
        plan = _check_names(plan, ckpt, dict(group_patterns=group_patterns), layers)
    return execute(plan, ckpt, dst, force=force, progress=progress)


def _check_free_space(dst, size, what):
    """Raises OutputError when the file system of `dst` has fewer than `size` bytes free."""
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
        raise errors.OutputError(
            f"{dst}: {what} writes at least {tables.format_bytes(size)} ({size:,} bytes), and "
            f"{folder} has {tables.format_bytes(free)} free; nothing was written: free space, "
            f"write elsewhere, or check --layers")


def plan_opened(opened, **options):
    """Plans the migration of an opening.Opened checkpoint -> (reader, Plan).

    `options` are `planning.plan_migration`'s (not `notes`: the opening gives them); the
    reader reads what the plan's steps name (cuDNN buffers unpacked into TF1 cell tensors);
    a PlanError names the checkpoint. The one planner of migrate, its dry run,
    `restore_shared` and the tf-slim `init_fn`.
    """
    reader, notes = opened.planning_reader()
    with opening.naming_errors(reader.prefix):
        plan = planning.plan_migration(reader.specs, notes=notes, **options)
        return reader, _check_names(plan, reader, options)


def _check_names(plan, ckpt, options, layers=None):
    """`plan` with its stacks' names checked against the graphs TensorFlow builds today."""
    rules = planning.Rules(options.get("group_patterns", ()), options.get("renames", ()),
                           options.get("excludes", ()))
    return graph_names.check_plan(plan, [s.name for s in ckpt.specs], rules, layers)


def _nbytes(spec):
    if spec.dtype in ("string", "resource", "variant"):
        return None
    return int(np.prod(spec.shape, dtype=np.int64)) * tf.as_dtype(spec.dtype).size
