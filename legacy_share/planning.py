"""The pure core of the migrator: from a checkpoint's names, shapes and dtypes to a plan.

Nothing here reads or writes files or imports TensorFlow: a plan is data that can be printed
(dry run), tested, and executed by `legacy_share.writing`.
"""

import dataclasses
import json
from typing import Optional, Tuple

__all__ = [
    "TensorSpec",
    "Strategy",
    "Step",
    "Drop",
    "Plan",
    "plan_migration",
    "plan_unshare",
]

COPY = "copy"            # same name, bit for bit
RENAME = "rename"        # new name, bit for bit
MERGE = "merge"          # one tensor from the layers of a group, by the plan's strategy
DUPLICATE = "duplicate"  # unshare: the shared tensor written under one layer's name


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A checkpoint entry: `name`, full `shape` (tuple of ints), TF `dtype` name ("float32", "string")."""

    name: str
    shape: Tuple[int, ...]
    dtype: str


@dataclasses.dataclass(frozen=True)
class Strategy:
    """How a layer group becomes one tensor: `first`, `layer:K`, `mean` or `strict` (within `tolerance`)."""

    kind: str
    layer: Optional[int] = None
    tolerance: float = 0.0

    @classmethod
    def parse(cls, text, tolerance=0.0):
        """`"first"`, `"layer:2"`, `"mean"`, `"strict"` -> Strategy; PlanError on anything else."""
        raise NotImplementedError

    def __str__(self):
        return f"layer:{self.layer}" if self.kind == "layer" else self.kind


@dataclasses.dataclass(frozen=True)
class Step:
    """One output tensor and how it is made from `sources` (input names, in layer order for MERGE)."""

    name: str
    shape: Tuple[int, ...]
    dtype: str
    action: str
    sources: Tuple[str, ...]
    layers: Tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Drop:
    """An input tensor left out of the output, and why."""

    name: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Plan:
    """Every output tensor (`steps`, sorted by name) and every dropped input (`dropped`)."""

    steps: Tuple[Step, ...]
    dropped: Tuple[Drop, ...]
    strategy: Strategy

    def to_dict(self):
        """JSON-ready form: {"strategy", "steps": [...], "dropped": [...]}."""
        raise NotImplementedError

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def format_table(self):
        """Human-readable table: output name, shape, dtype, action, sources."""
        raise NotImplementedError


def plan_migration(specs, strategy="first", group_patterns=(), renames=(), excludes=(),
                   drop_optimizer_state=False, tolerance=0.0):
    """Plans a migration of `specs` (iterable of TensorSpec) to today's names and one shared layer.

    `group_patterns`: regexes with one capture group for the layer index (e.g. `word_(\\d+)`),
    besides the built-in `Cell{i}` / `cell_{i}`; `renames`: (old_regex, new) pairs over whole
    path components; `excludes`: regexes whose matches are copied untouched.
    Raises PlanError naming the tensor and shapes when a group cannot be shared.
    """
    raise NotImplementedError


def plan_unshare(specs, layers):
    """Plans the inverse: every `cell_0` tensor of a shared checkpoint copied to `cell_0..layers-1`."""
    raise NotImplementedError
