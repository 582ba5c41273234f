"""Warm-starting tf-slim training from a legacy per-layer checkpoint.

`slim.assign_from_checkpoint_fn(model_path, var_list)` returns the `init_fn` that
`slim.learning.train` runs once the session is initialised; it restores with a `Saver`, so the
checkpoint must hold the graph's names. A checkpoint written before TF 1.2 holds other names
(`RNN/MultiRNNCell/Cell0/GRUCell/Gates/Linear/Matrix`) and one copy per layer.
`assign_from_legacy_checkpoint_fn` takes the same arguments and returns the same kind of
`init_fn`, which assigns every variable the value `legacy-share migrate` would write for it
(`legacy_share.restore_shared`), without writing a file::

    import tf_slim as slim
    from legacy_share.slim import assign_from_legacy_checkpoint_fn

    variables = slim.get_variables_to_restore(exclude=["softmax_w", "softmax_b"])
    init_fn = assign_from_legacy_checkpoint_fn("old/model.ckpt-20", variables)
    slim.learning.train(train_op, logdir, init_fn=init_fn, number_of_steps=1000)

The graph may be finalized when `init_fn` runs (slim's Supervisor finalizes it): the values are
fed through the variables' own initializers, and no op is added.
"""

import logging

from legacy_share import errors
from legacy_share.restoring import assign_planned, planned_checkpoint

__all__ = ["assign_from_legacy_checkpoint_fn"]

_LOG = logging.getLogger("legacy_share")
_SHOWN = 10  # names listed in an error message before "and N more"


def assign_from_legacy_checkpoint_fn(legacy_checkpoint, var_list, ignore_missing_vars=False, *,
                                     strategy="first", group_patterns=(), renames=(),
                                     excludes=(), tolerance=0.0, share=True, share_from=0,
                                     drop_optimizer_state=False, meta=None, cudnn=None,
                                     cudnn_buffer=None):
    """Returns an `init_fn(session)` that warm-starts `var_list` from a legacy checkpoint.

    Mirrors `tf_slim.assign_from_checkpoint_fn`: the checkpoint is opened, planned and checked
    against `var_list` now, so every error comes before training starts; `init_fn` only
    assigns. The checkpoint is read through the migrator, so its variables are found under
    today's names, with the layers of a per-layer checkpoint merged into the names a shared
    stack creates (`rnn/multi_rnn_cell/cell_0/gru_cell/...`), their optimizer slots and moving
    averages too. Filter the variables with slim's own
    `slim.get_variables_to_restore(include=[...], exclude=[...])`.

    Args:
      legacy_checkpoint: the legacy checkpoint: a prefix, a V1 file, a folder with a
        `checkpoint` state file, or a `.index` / `.data-*` path.
      var_list: a non-empty list of the graph's variables to assign (partitioned variables
        are matched by their full name). A dict of checkpoint names is not taken: the names
        are today's names; map other names with `renames`.
      ignore_missing_vars: if True, variables the migrated checkpoint does not provide are
        skipped, each with a warning, as slim skips them; if False, they are an error now.
      strategy, group_patterns, renames, excludes, tolerance, share, share_from,
        drop_optimizer_state, meta, cudnn, cudnn_buffer: the migration options, as in
        `legacy_share.migrate` (default: merge with "first").

    Returns:
      A function of one argument, the `tf.compat.v1.Session` to initialise, that assigns the
      values and returns the executed `Plan`; or None when `ignore_missing_vars` is True and
      the checkpoint provides none of the variables (slim returns None then too).

    Raises:
      ArgumentError (also a ValueError and a TypeError): `var_list` is empty or a dict.
      CheckpointError: the checkpoint cannot be found or read.
      PlanError: the checkpoint cannot be migrated with these options.
      VerificationError: `ignore_missing_vars` is False and the migrated checkpoint does
        not provide some variables of `var_list`.
      The returned function raises IncompatibleShapeError when a variable's shape differs
      from the migrated tensor's (see `restore_shared`).
    """
    if isinstance(var_list, dict):
        raise errors.ArgumentError(
            "assign_from_legacy_checkpoint_fn: var_list is a dict, but the migrated checkpoint "
            "holds today's names, which the graph's variables already have: pass a list of "
            "variables (e.g. slim.get_variables_to_restore(...)), and map other checkpoint "
            "names onto them with renames=[(old_regex, new)].")
    variables = list(var_list or ())
    if not variables:
        raise errors.ArgumentError(
            "assign_from_legacy_checkpoint_fn: var_list is empty: pass the variables to warm-"
            "start, e.g. slim.get_variables_to_restore(exclude=[...]).")
    reader, plan = planned_checkpoint(
        legacy_checkpoint, strategy=strategy, group_patterns=group_patterns, renames=renames,
        excludes=excludes, tolerance=tolerance, share=share, share_from=share_from,
        drop_optimizer_state=drop_optimizer_state, meta=meta, cudnn=cudnn,
        cudnn_buffer=cudnn_buffer)
    provided = {step.name for step in plan.steps}
    missing = [v for v in variables if _checkpoint_name(v) not in provided]
    if missing and not ignore_missing_vars:
        names = sorted({_checkpoint_name(v) for v in missing})
        shown = ", ".join(names[:_SHOWN]) + (
            f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
        raise errors.VerificationError(
            f"{legacy_checkpoint}: migrated, it would not provide {len(names)} variable(s) of "
            f"var_list: {shown}; leave them out of var_list (slim.get_variables_to_restore("
            f"exclude=[...])), pass ignore_missing_vars=True, or map their names with "
            f"renames / group_patterns.")
    for variable in missing:
        _LOG.warning("Variable %s missing in legacy checkpoint %s (migrated)",
                     _checkpoint_name(variable), legacy_checkpoint)
    kept = [v for v in variables if _checkpoint_name(v) in provided]
    if not kept:
        _LOG.warning("No variables to restore from legacy checkpoint %s", legacy_checkpoint)
        return None

    def init_fn(session):
        return assign_planned(session, reader, plan, var_list=kept)

    return init_fn


def _checkpoint_name(variable):
    # The name a Saver stores it under: a partition of a partitioned variable is part of the
    # full tensor, which is what the checkpoint holds.
    info = getattr(variable, "_save_slice_info", None)
    return info.full_name if info is not None else variable.op.name
