"""The plan as data: checkpoint entries, strategies, steps, and the Plan a writer executes.

How a writer executes a Step: split `sources` into `len(layers) or 1` runs of `shards` names
(layer-major, see `Step.layer_sources`); concatenate each run on axis 0 (a run of one is the
tensor itself); then COPY / RENAME / DUPLICATE write the single result under `name`, and MERGE
makes one tensor from the per-layer results by the plan's strategy.
"""

import dataclasses
import json
import re
from typing import Optional, Tuple

from legacy_share.errors import PlanError
from legacy_share.reports import JsonReport

__all__ = [
    "COPY",
    "RENAME",
    "MERGE",
    "DUPLICATE",
    "FLOAT_DTYPES",
    "TensorSpec",
    "Strategy",
    "Step",
    "Drop",
    "StackCheck",
    "Plan",
]

COPY = "copy"            # same name, bit for bit
RENAME = "rename"        # new name, bit for bit
MERGE = "merge"          # one tensor from the layers of a group, by the plan's strategy
DUPLICATE = "duplicate"  # unshare: the shared tensor written under one layer's name

# Dtypes `mean` averages (in float64): the real floating-point dtypes, by their TF names.
FLOAT_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
_STRATEGY_FORMS = "first, layer:K (K = a layer index, e.g. layer:1), mean, strict"


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A checkpoint entry: `name`, full `shape` (tuple of ints), TF `dtype` name ("float32", "string")."""

    name: str
    shape: Tuple[int, ...]
    dtype: str


@dataclasses.dataclass(frozen=True)
class Strategy:
    """How a layer group becomes one tensor: `first`, `layer:K`, `mean` or `strict` (within `tolerance`).

    `first` takes the lowest layer index that is merged: layer 0 of a MultiRNNCell stack, layer
    K with `share_from=K`, layer 1 of a `--group 'layer(\\d+)'` stack numbered from 1.
    """

    kind: str
    layer: Optional[int] = None
    tolerance: float = 0.0

    @classmethod
    def parse(cls, text, tolerance=0.0):
        """Parses a strategy.

        Args:
          text: `"first"`, `"layer:2"`, `"mean"` or `"strict"` (case and spaces ignored).
          tolerance: the max abs difference `strict` allows, a finite number >= 0.

        Returns:
          A Strategy.

        Raises:
          PlanError: the text or the tolerance is not valid.
        """
        given = tolerance
        try:
            tolerance = float(tolerance)
        except (TypeError, ValueError):
            tolerance = float("nan")
        if not 0.0 <= tolerance < float("inf"):
            raise PlanError(f"tolerance must be a finite number >= 0, got {given!r}")
        kind = str(text).strip().lower()
        if kind in ("first", "mean", "strict"):
            return cls(kind, None, tolerance)
        match = re.fullmatch(r"layer\s*:\s*(\d+)", kind)
        if match:
            return cls("layer", int(match.group(1)), tolerance)
        raise PlanError(f"unknown strategy {text!r}; use one of: {_STRATEGY_FORMS}")

    def __str__(self):
        return f"layer:{self.layer}" if self.kind == "layer" else self.kind


@dataclasses.dataclass(frozen=True)
class Step:
    """One output tensor and how it is made from `sources` (input names, in layer order for MERGE).

    `layers`: the layer index of each source layer of a MERGE, ascending (empty otherwise).
    `shards` > 1: every layer is `shards` consecutive sources to concatenate on axis 0 in order
    (layer L shard k is `sources[L_position * shards + k]`); `shape` is the concatenated shape.
    """

    name: str
    shape: Tuple[int, ...]
    dtype: str
    action: str
    sources: Tuple[str, ...]
    layers: Tuple[int, ...] = ()
    shards: int = 1

    def __post_init__(self):
        # Checked here, where a plan is built (by the planner or from JSON), so that no
        # malformed step reaches a writer half-way through an output.
        if self.action not in (COPY, RENAME, MERGE, DUPLICATE):
            raise PlanError(f"{self.name}: unknown action {self.action!r}; expected "
                            f"{COPY}, {RENAME}, {MERGE} or {DUPLICATE}.")
        runs = len(self.layers) if self.action == MERGE else 1
        if self.shards < 1 or (self.action == MERGE) != bool(self.layers) \
                or len(self.sources) != runs * self.shards:
            raise PlanError(
                f"{self.name}: a {self.action} step with {len(self.sources)} source(s), "
                f"layers {list(self.layers)} and {self.shards} shard(s) per layer does not add up "
                f"(a merge needs layers and shards x layers sources; any other step one layer's "
                f"shards).")

    def layer_sources(self):
        """Sources split per layer: a tuple (one per layer, or one) of tuples of `shards` names."""
        k = self.shards
        return tuple(self.sources[i:i + k] for i in range(0, len(self.sources), k))


@dataclasses.dataclass(frozen=True)
class Drop:
    """An input tensor left out of the output, and why."""

    name: str
    reason: str


@dataclasses.dataclass(frozen=True)
class StackCheck:
    """How the output names of one RNN stack were checked: `names` is "exact" (equal to the
    variables TensorFlow creates in `graph`, the graph that restores them) or "names by rule;
    no graph to check against" (`graph` then says why)."""

    scope: str
    names: str
    graph: str


@dataclasses.dataclass(frozen=True)
class Plan(JsonReport):
    """Every output tensor (`steps`, sorted by name) and every dropped input (`dropped`).

    `strategy` is None for an unshare plan (it has no MERGE steps). `share_from`: the first
    layer index merged (0: every layer; None: no layer merged, `share=False`). `notes`: what
    the checkpoint cannot say but the graph that loads it must know (one line each).
    """

    steps: Tuple[Step, ...]
    dropped: Tuple[Drop, ...]
    strategy: Optional[Strategy]
    share_from: Optional[int] = 0
    notes: Tuple[str, ...] = ()
    stacks: Tuple[StackCheck, ...] = ()

    def to_dict(self):
        """JSON-ready form: {"strategy", "share_from", "notes", "steps": [...], "dropped": [...],
        "stacks": [{"scope", "names", "graph"}]}."""
        strategy = None if self.strategy is None else dataclasses.asdict(self.strategy)
        steps = [dict(name=s.name, shape=list(s.shape), dtype=s.dtype, action=s.action,
                      sources=list(s.sources), layers=list(s.layers), shards=s.shards)
                 for s in self.steps]
        dropped = [dict(name=d.name, reason=d.reason) for d in self.dropped]
        return {"strategy": strategy, "share_from": self.share_from, "notes": list(self.notes),
                "steps": steps, "dropped": dropped,
                "stacks": [dataclasses.asdict(s) for s in self.stacks]}

    @classmethod
    def from_dict(cls, data):
        """Inverse of `to_dict`."""
        strategy = data.get("strategy")
        if strategy is not None:
            strategy = Strategy(strategy["kind"], strategy.get("layer"),
                                float(strategy.get("tolerance", 0.0)))
        steps = tuple(
            Step(s["name"], tuple(int(d) for d in s["shape"]), s["dtype"], s["action"],
                 tuple(s["sources"]), tuple(int(l) for l in s.get("layers", ())),
                 int(s.get("shards", 1)))
            for s in data["steps"])
        dropped = tuple(Drop(d["name"], d["reason"]) for d in data.get("dropped", ()))
        share_from = data.get("share_from", 0)
        stacks = tuple(StackCheck(s["scope"], s["names"], s["graph"])
                       for s in data.get("stacks", ()))
        return cls(steps, dropped, strategy, None if share_from is None else int(share_from),
                   tuple(data.get("notes", ())), stacks)

    @classmethod
    def from_json(cls, text):
        """Inverse of `to_json`."""
        return cls.from_dict(json.loads(text))

    def summary(self):
        """One line: how many tensors out, by action, and how many inputs dropped."""
        count = {action: 0 for action in (COPY, RENAME, MERGE, DUPLICATE)}
        for step in self.steps:
            count[step.action] = count.get(step.action, 0) + 1
        out = f"{len(self.steps)} tensors out: {count[COPY]} copied, {count[RENAME]} renamed, "
        if self.strategy is None or count[DUPLICATE]:
            shared = len({s.sources for s in self.steps if s.action == DUPLICATE})
            out += f"{count[DUPLICATE]} duplicated from {shared} shared tensors"
        elif self.share_from is None:
            out += "no layer merged (--no-share)"
        else:
            merged_from = sum(len(s.sources) for s in self.steps if s.action == MERGE)
            strategy = str(self.strategy)
            if self.strategy.kind == "strict":
                strategy += f" (tolerance {self.strategy.tolerance:g})"
            out += f"{count[MERGE]} merged from {merged_from} layer tensors by {strategy}"
            if self.share_from:
                out += f" (layers >= {self.share_from})"
        return out + f"; {len(self.dropped)} dropped"

    def format_table(self):
        """Human-readable table: action, output name, shape, dtype, sources; drops; notes; summary."""
        from legacy_share import tables  # pylint: disable=import-outside-toplevel
        return tables.format_plan(self)
