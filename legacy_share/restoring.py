"""Restores a legacy per-layer checkpoint straight into a graph built with shared cells."""

import logging

import numpy as np

from legacy_share import errors
from legacy_share.migration import plan_opened
from legacy_share.opening import open_for_planning
from legacy_share.values import step_value
from legacy_share._tf import tf1

__all__ = ["restore_shared"]

_LOG = logging.getLogger("legacy_share")


def restore_shared(session, legacy_checkpoint, strategy="first", var_list=None, *,
                   group_patterns=(), renames=(), excludes=(), tolerance=0.0, share=True,
                   share_from=0, drop_optimizer_state=False, meta=None, cudnn=None,
                   cudnn_buffer=None):
    """Assigns every graph variable its migrated value, without writing a checkpoint.

    Args:
      session: a tf.compat.v1 Session whose graph holds the variables.
      legacy_checkpoint: the per-layer checkpoint; only ever read.
      strategy, group_patterns, renames, excludes, tolerance, share, share_from,
        drop_optimizer_state, meta, cudnn, cudnn_buffer: as in `migrate` (e.g. share_from=1
        for `MultiRNNCell([GRUCell(n)] + [SharedGRUCell(n)] * k)`, share=False for one cell
        object per layer); the checkpoint is opened and planned as `migrate` plans it.
      var_list: the variables to assign (default: the graph's global variables).

    Returns:
      The Plan whose values were assigned (computed in numpy as `migrate` writes them, fed
      through the variables' initializers).

    Raises:
      VerificationError: graph variables the plan does not provide; IncompatibleShapeError /
      IncompatibleDtypeError: a variable whose shape / dtype differs; CheckpointError, PlanError,
      LayersDifferError as `migrate`.
    """
    reader, plan = planned_checkpoint(
        legacy_checkpoint, strategy=strategy, group_patterns=group_patterns, renames=renames,
        excludes=excludes, tolerance=tolerance, share=share, share_from=share_from,
        drop_optimizer_state=drop_optimizer_state, meta=meta, cudnn=cudnn,
        cudnn_buffer=cudnn_buffer)
    return assign_planned(session, reader, plan, var_list)


def planned_checkpoint(legacy_checkpoint, **options):
    """Opens and plans `legacy_checkpoint` as `migrate` does -> (reader, Plan).

    `options` are `migration.plan_checkpoint`'s keywords; the reader reads the values the
    plan's steps name (cuDNN buffers already unpacked into TF1 cell tensors).
    """
    meta, cudnn, cudnn_buffer = (options.pop(k, None) for k in ("meta", "cudnn", "cudnn_buffer"))
    return plan_opened(open_for_planning(legacy_checkpoint, meta, cudnn, cudnn_buffer), **options)


def assign_planned(session, reader, plan, var_list=None):
    """Assigns every variable of `var_list` (default: the graph's global variables) the value
    step `plan` writes for its name, read from `reader`; see `restore_shared`."""
    graph = getattr(session, "graph", None)
    if graph is None:
        raise errors.ArgumentError(f"expected the tf.compat.v1.Session to restore into, got "
                                   f"{session!r}")
    with graph.as_default():
        variables = list(tf1.global_variables() if var_list is None else var_list)
    steps = {step.name: step for step in plan.steps}
    by_name = {}
    for variable in variables:
        by_name.setdefault(_checkpoint_name(variable), []).append(variable)
    missing = sorted(name for name in by_name if name not in steps)
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise errors.VerificationError(
            f"{reader.prefix}: the migrated checkpoint would not provide {len(missing)} graph "
            f"variable(s): {shown}; check --group/--rename/--exclude or pass var_list.")
    for name, parts in sorted(by_name.items()):
        full_shape = _full_shape(parts[0])
        if full_shape is not None and tuple(full_shape) != tuple(steps[name].shape):
            raise errors.IncompatibleShapeError(
                f"{reader.prefix}: variable {name} has shape {list(full_shape)} in the graph but "
                f"{list(steps[name].shape)} in the migrated checkpoint; build the graph with the "
                f"checkpoint's sizes.")
        graph_dtype = parts[0].dtype.base_dtype.name
        if graph_dtype != steps[name].dtype:
            raise errors.IncompatibleDtypeError(
                f"{reader.prefix}: variable {name} is {graph_dtype} in the graph but "
                f"{steps[name].dtype} in the migrated checkpoint; build the graph with the "
                f"checkpoint's dtypes.")
    unused = sorted(set(steps) - set(by_name))
    if unused:
        _LOG.info("%d migrated tensor(s) have no variable in var_list, e.g. %s",
                  len(unused), unused[0])
    with graph.as_default():
        for name, parts in sorted(by_name.items()):
            value = step_value(steps[name], reader, plan.strategy)
            for variable in parts:
                # Feeds the variable's own initializer (what the deprecated Variable.load does):
                # no new ops, so a finalized graph works.
                initializer = variable.initializer
                session.run(initializer, {initializer.inputs[1]: _slice(variable, value)})
    return plan


def _checkpoint_name(variable):
    info = _slice_info(variable)
    return info.full_name if info is not None else variable.op.name


def _slice_info(variable):
    # Partitioned variables keep their place in the full tensor here (what Saver uses too).
    return getattr(variable, "_save_slice_info", None)


def _full_shape(variable):
    info = _slice_info(variable)
    if info is not None:
        return tuple(info.full_shape)
    shape = variable.shape
    return tuple(shape.as_list()) if shape.is_fully_defined() else None


def _slice(variable, value):
    info = _slice_info(variable)
    if info is None:
        return value
    index = tuple(slice(offset, offset + size)
                  for offset, size in zip(info.var_offset, info.var_shape))
    return np.ascontiguousarray(value[index])
