"""Checks a checkpoint against the variables of a MetaGraphDef, by parsing the proto only.

The graph is never imported nor run: variables come from the `variables` collection
(VariableDef protos), shapes and dtypes from the attrs of their VariableV2 / VarHandleOp nodes.
"""

import dataclasses
from typing import Optional, Tuple

from legacy_share.metagraph import read_meta_graph, read_meta_graph_variables
from legacy_share.opening import open_for_planning
from legacy_share.planning import TensorSpec
from legacy_share.reports import JsonReport

__all__ = ["Mismatch", "VerifyReport", "verify_checkpoint", "read_meta_graph_variables",
           "read_meta_graph"]

@dataclasses.dataclass(frozen=True)
class Mismatch:
    """A variable whose checkpoint shape/dtype differs from the graph's (None: unknown dimension)."""

    name: str
    ckpt_shape: Tuple[int, ...]
    ckpt_dtype: str
    graph_shape: Optional[Tuple[Optional[int], ...]]
    graph_dtype: str


@dataclasses.dataclass(frozen=True)
class VerifyReport(JsonReport):
    """`missing`: graph variables absent from the checkpoint; `unexpected`: the reverse."""

    checkpoint: str
    meta_graph: str
    missing: Tuple[TensorSpec, ...]
    unexpected: Tuple[TensorSpec, ...]
    mismatched: Tuple[Mismatch, ...]
    matched: int = 0

    @property
    def ok(self):
        return not (self.missing or self.unexpected or self.mismatched)

    def to_dict(self):
        def spec(s):
            return {"name": s.name, "shape": _shape_list(s.shape), "dtype": s.dtype}

        return {
            "checkpoint": self.checkpoint,
            "meta_graph": self.meta_graph,
            "ok": self.ok,
            "matched": self.matched,
            "missing": [spec(s) for s in self.missing],
            "unexpected": [spec(s) for s in self.unexpected],
            "mismatched": [{"name": m.name, "checkpoint_shape": list(m.ckpt_shape),
                            "checkpoint_dtype": m.ckpt_dtype,
                            "graph_shape": _shape_list(m.graph_shape),
                            "graph_dtype": m.graph_dtype} for m in self.mismatched],
        }

    def format(self):
        """Human-readable report: one line per problem, then a summary line."""
        lines = []
        for s in self.missing:
            lines.append(f"missing     {s.name}  {s.dtype}{_shape_list(s.shape)}  (in the graph, "
                         f"not in the checkpoint)")
        for s in self.unexpected:
            lines.append(f"unexpected  {s.name}  {s.dtype}{_shape_list(s.shape)}  (in the "
                         f"checkpoint, not in the graph)")
        for m in self.mismatched:
            lines.append(f"mismatched  {m.name}  checkpoint {m.ckpt_dtype}{list(m.ckpt_shape)}  "
                         f"graph {m.graph_dtype}{_shape_list(m.graph_shape)}")
        verdict = "OK" if self.ok else "FAILED"
        lines.append(f"{verdict}: {self.matched} variable(s) match; {len(self.missing)} missing, "
                     f"{len(self.unexpected)} unexpected, {len(self.mismatched)} mismatched "
                     f"({self.checkpoint} against {self.meta_graph})")
        return "\n".join(lines)


def verify_checkpoint(ckpt, meta_graph_path):
    """Compares the tensors of a checkpoint with the variables a graph will restore.

    The `.meta` is parsed, never imported nor run: a hostile graph's ops do not execute.

    Args:
      ckpt: a checkpoint (prefix, folder, V1 file or .index), e.g. the output of `migrate`.
      meta_graph_path: the MetaGraphDef (`.meta`) of the graph that will restore it.
    Returns:
      A VerifyReport: tensors missing from the checkpoint, tensors the graph has no variable
      for, and shape / dtype mismatches (`ok` when there are none).
    Raises:
      CheckpointError: either file cannot be read or is not what it claims to be.
    """
    checkpoint = open_for_planning(ckpt).checkpoint
    graph = {spec.name: spec for spec in read_meta_graph_variables(meta_graph_path)}
    stored = {spec.name: spec for spec in checkpoint.specs}
    missing = tuple(graph[name] for name in sorted(set(graph) - set(stored)))
    unexpected = tuple(stored[name] for name in sorted(set(stored) - set(graph)))
    mismatched = []
    for name in sorted(set(graph) & set(stored)):
        want, got = graph[name], stored[name]
        if want.dtype != got.dtype or not _compatible(want.shape, got.shape):
            mismatched.append(Mismatch(name, got.shape, got.dtype, want.shape, want.dtype))
    matched = len(set(graph) & set(stored)) - len(mismatched)
    return VerifyReport(checkpoint.prefix, str(meta_graph_path), missing, unexpected,
                        tuple(mismatched), matched)


def _compatible(graph_shape, ckpt_shape):
    if graph_shape is None:
        return True
    return len(graph_shape) == len(ckpt_shape) and all(
        g is None or g == c for g, c in zip(graph_shape, ckpt_shape))


def _shape_list(shape):
    return None if shape is None else list(shape)
