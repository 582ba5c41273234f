"""The proof of an export: the model's outputs against the TF1 equations in float64 NumPy
(for a cuDNN model, the cuDNN equations of `legacy_share.cudnn.run`).

The reference runs on the checkpoint's own TF1 arrays (`legacy_share.reference`), never on
the Keras weights, so a wrong gate order or a forgotten forget bias shows as a difference.
"""

import dataclasses

import numpy as np

from legacy_share import cell_kinds
from legacy_share import reference
from legacy_share.keras import cudnn_stacks
from legacy_share.keras import structure

__all__ = ["Proof", "probe_inputs", "reference_outputs", "compare"]

BATCH_LENGTHS = "T, T/2, 1, 0"


@dataclasses.dataclass(frozen=True)
class Proof:
    """`max_diff` max |keras - reference|; `relative` that over max |reference|."""

    max_diff: float
    relative: float
    tolerance: float
    time_steps: int

    @property
    def ok(self):
        return self.relative <= self.tolerance

    def describe(self):
        return (f"max |diff| {self.max_diff:.1e} (relative {self.relative:.1e}, tolerance "
                f"{self.tolerance:g}) over lengths {{{BATCH_LENGTHS}}} with T = "
                f"{self.time_steps}")


def probe_inputs(plan, time_steps=7, seed=0):
    """Random `inputs` (ids with an embedding) and `lengths` {T, T/2, 1, 0} for `plan`'s model."""
    rng = np.random.RandomState(seed)
    lengths = np.array([time_steps, time_steps // 2, 1, 0], np.int32)
    if plan.embedding is not None:
        vocabulary = plan.embedding.shapes[0][0]
        inputs = rng.randint(0, vocabulary, size=(4, time_steps)).astype(np.int32)
    else:
        inputs = rng.uniform(-1, 1, size=(4, time_steps, plan.stack.depths[0]))
        inputs = inputs.astype(plan.dtype)  # float64 models are probed with float64 inputs
    return inputs, lengths


def reference_outputs(plan, value_of, inputs, lengths):
    """What the TF1 graph computes for `plan` on `inputs` [batch, time(, depth)], float64."""
    x = np.asarray(inputs)
    if plan.embedding is not None:
        x = value_of(plan.embedding.sources[0]).astype(np.float64)[x]
    x = x.astype(np.float64)
    for stack in plan.chain:
        x = _stack_outputs(stack, value_of, x, lengths)
    if plan.dense is not None:
        x = x @ value_of(plan.dense.sources[0]).astype(np.float64)
        if len(plan.dense.sources) > 1:
            x = x + value_of(plan.dense.sources[1]).astype(np.float64)
    return x


def _stack_outputs(stack, value_of, x, lengths):
    """What one stack's TF1 graph outputs on `x` [batch, time, depth] float64."""
    batch = x.shape[0]

    def steps(direction):
        out = []
        for position in range(stack.layers):
            variables = stack.cell_sources(direction, position)
            # float32 weights stay float32: NumPy computes float32 @ float64 in float64, and
            # float64 copies of a big stack's weights would double the peak memory.
            out.append(_step(stack, {v: value_of(s) for v, s in variables.items()}))
        return out

    def zeros():
        n, m = np.zeros([batch, stack.units]), np.zeros([batch, stack.output])
        return (n, m) if cell_kinds.by_scope(stack.cell).state_pair else n

    def run(step_list):
        return lambda values, lens: reference.run_stack(
            step_list, [zeros() for _ in step_list], values, lens)[0]

    if cell_kinds.cudnn_kind(stack.cell):
        x = cudnn_stacks.reference_outputs(stack, value_of, x, lengths)
    elif stack.topology == structure.FORWARD:
        x = run(steps(""))(x, lengths)
    elif stack.topology == structure.BIDIRECTIONAL:
        x = reference.run_bidirectional(run(steps("fw")), run(steps("bw")), x, lengths)
    else:
        forward, backward = steps("fw"), steps("bw")
        for fw, bw in zip(forward, backward):
            x = reference.run_bidirectional(run([fw]), run([bw]), x, lengths)
    return x


def compare(outputs, expected, tolerance, time_steps):
    """A Proof of `outputs` (the model's) against `expected` (the reference's)."""
    outputs, expected = np.asarray(outputs, np.float64), np.asarray(expected, np.float64)
    if outputs.shape != expected.shape:
        return Proof(float("inf"), float("inf"), tolerance, time_steps)
    diff = float(np.max(np.abs(outputs - expected))) if outputs.size else 0.0
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    return Proof(diff, diff / max(scale, 1e-12), tolerance, time_steps)


def _step(stack, w):
    settings = dict(forget_bias=stack.forget_bias, cell_clip=stack.cell_clip,
                    proj_clip=stack.proj_clip)
    return reference.kind_step(cell_kinds.by_scope(stack.cell), w, **settings)
