"""The migrator's public API: inspect, plan, migrate and unshare checkpoints.

The command line (`legacy_share.cli`) is a thin layer over these functions.
"""

import contextlib
import dataclasses
import json
from typing import Optional, Tuple

import numpy as np

from legacy_share import errors
from legacy_share import planning
from legacy_share import values
from legacy_share.reading import open_checkpoint
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
    when not computed: not shareable, not numeric, or data missing).
    """

    key: str
    layers: Tuple[int, ...]
    names: Tuple[str, ...]
    shapes: Tuple[Tuple[int, ...], ...]
    dtype: str
    shareable: bool
    max_abs_difference: Optional[float]


@dataclasses.dataclass(frozen=True)
class Inspection:
    """What `inspect_checkpoint` found: every variable, and the layer groups among them."""

    checkpoint: str
    variables: Tuple[InspectedVariable, ...]
    groups: Tuple[InspectedGroup, ...]
    values_read: bool

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
                        "max_abs_difference": values.json_number(g.max_abs_difference)}
                       for g in self.groups],
        }

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def format_table(self):
        """Groups first (key, layers, shape, dtype, bytes per layer, shareable, max |diff|), then the rest."""
        rows = [("GROUP (merged name)", "LAYERS", "SHAPE", "DTYPE", "BYTES/LAYER", "SHAREABLE", "MAX|DIFF|")]
        sizes = {v.name: v.nbytes for v in self.variables}
        for g in self.groups:
            shape = planning.format_shape(g.shapes[0]) if g.shareable else " | ".join(
                planning.format_shape(s) for s in g.shapes)
            diff = "-" if g.max_abs_difference is None else f"{g.max_abs_difference:.6g}"
            rows.append((g.key, ",".join(map(str, g.layers)), shape, g.dtype,
                         _bytes_text(sizes[g.names[0]]), "yes" if g.shareable else "NO", diff))
        lines = planning.format_columns(rows)
        others = [v for v in self.variables if v.group is None]
        if others:
            lines.append("")
            header = ("VARIABLE (no layer)", "SHAPE", "DTYPE", "BYTES")
            lines.extend(planning.format_columns([header] + [
                (v.name, planning.format_shape(v.shape), v.dtype, _bytes_text(v.nbytes))
                for v in others]))
        total = sum(v.nbytes or 0 for v in self.variables)
        lines.append("")
        lines.append(f"{self.checkpoint}: {len(self.variables)} variable(s), {_bytes_text(total)}; "
                     f"{len(self.groups)} layer group(s), "
                     f"{sum(not g.shareable for g in self.groups)} not shareable"
                     + ("" if self.values_read else "; data files missing, differences not computed"))
        return "\n".join(lines)


def inspect_checkpoint(path, group_patterns=(), renames=(), excludes=()):
    """Lists the variables of checkpoint `path` grouped by layer, as the planner groups them -> Inspection.

    Options as in `plan_checkpoint`. A group's key is the name it would be merged into.
    Differences between layers are computed one tensor at a time (not for sharded tensors,
    nor when the data files are missing).
    """
    ckpt = open_checkpoint(path)
    stored = {spec.name: spec for spec in ckpt.specs}
    with _naming(ckpt):
        found = planning.find_layer_groups(ckpt.specs, group_patterns=group_patterns,
                                           renames=renames, excludes=excludes)
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
        groups.append(InspectedGroup(
            group.name, tuple(layer for layer, _ in group.members), tuple(s.name for s in specs),
            tuple(s.shape for s in specs), specs[0].dtype, shareable, difference))
    variables = tuple(
        InspectedVariable(spec.name, spec.shape, spec.dtype, _nbytes(spec),
                          *membership.get(spec.name, (None, None)))
        for spec in ckpt.specs)
    return Inspection(ckpt.prefix, variables, tuple(groups), values_read)


def plan_checkpoint(src, strategy="first", group_patterns=(), renames=(), excludes=(),
                    drop_optimizer_state=False, tolerance=0.0):
    """Plans the migration of checkpoint `src` from its metadata only (data files not needed) -> Plan."""
    return plan_for(open_checkpoint(src), strategy=strategy, group_patterns=group_patterns,
                    renames=renames, excludes=excludes,
                    drop_optimizer_state=drop_optimizer_state, tolerance=tolerance)


def migrate(src, dst, strategy="first", group_patterns=(), renames=(), excludes=(),
            drop_optimizer_state=False, tolerance=0.0, force=False, progress=False):
    """Writes checkpoint `src` migrated to shared names as V2 checkpoint prefix `dst` -> the Plan executed.

    The input is only read; the output is verified by read-back before it is moved into place.
    """
    ckpt = open_checkpoint(src)
    plan = plan_for(ckpt, strategy=strategy, group_patterns=group_patterns, renames=renames,
                    excludes=excludes, drop_optimizer_state=drop_optimizer_state,
                    tolerance=tolerance)
    return execute(plan, ckpt, dst, force=force, progress=progress)


def unshare(src, dst, layers, group_patterns=(), force=False, progress=False):
    """Writes shared checkpoint `src` with layer 0's tensors copied to layers 0..layers-1 -> Plan.

    `group_patterns` as in `plan_checkpoint`: their index-0 components are unshared too.
    """
    ckpt = open_checkpoint(src)
    with _naming(ckpt):
        plan = planning.plan_unshare(ckpt.specs, layers, group_patterns=group_patterns)
    return execute(plan, ckpt, dst, force=force, progress=progress)


def plan_for(ckpt, **options):
    """`planning.plan_migration` over an open checkpoint; a PlanError names the checkpoint."""
    with _naming(ckpt):
        return planning.plan_migration(ckpt.specs, **options)


@contextlib.contextmanager
def _naming(ckpt):
    """Prefixes a PlanError from the pure planner with the checkpoint it was planning for."""
    try:
        yield
    except errors.PlanError as exc:
        raise errors.PlanError(f"{ckpt.prefix}: {exc}") from exc


def _nbytes(spec):
    if spec.dtype in ("string", "resource", "variant"):
        return None
    return int(np.prod(spec.shape, dtype=np.int64)) * tf.as_dtype(spec.dtype).size


def _bytes_text(nbytes):
    if nbytes is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return str(nbytes)
