"""Checks of an export's options and of the tensors its plan names, before any array is read.

Each refusal is one ExportError naming the checkpoint, the tensor (or option), what it holds,
and what to do; nothing here reads a tensor's values (the plan has names, shapes and dtypes).
"""

import math

from legacy_share.errors import ExportError
from legacy_share.plans import FLOAT_DTYPES
from legacy_share.tables import format_shape

__all__ = ["MAX_SHARED_LAYERS", "dense_names", "check_forget_bias", "check_plan", "model_dtype"]

# How many times a shared stack may run its one layer. K is not stored in a shared checkpoint,
# so it comes from the user, and every run is a node of the Keras model. Measured on a 2-unit
# GRU (2 busy cores): K = 200 exports in 13 s, 256 in 6 min with tf_keras, 512 in 3 min with
# Keras 3, and at 1024 Keras 3 fails with RecursionError; no TF1 graph we know of ran a
# cell anywhere near 256 times.
MAX_SHARED_LAYERS = 256


def dense_names(prefix, dense):
    """--dense "KERNEL[,BIAS]" (or a (kernel, bias) pair) -> (kernel,) or (kernel, bias).

    Raises:
      ExportError: no kernel name, or more than two names.
    """
    if dense is None:
        return None
    parts = tuple(dense.split(",")) if isinstance(dense, str) else tuple(dense)
    if not parts or len(parts) > 2 or not all(p is None or isinstance(p, str) for p in parts) \
            or not parts[0]:
        raise ExportError(f"{prefix}: --dense {dense!r} does not name a Dense layer: give "
                          f"KERNEL or KERNEL,BIAS (tensor names, see `legacy-share inspect`)")
    return parts[:1] if len(parts) == 1 or not parts[1] else parts


def check_forget_bias(prefix, forget_bias):
    """Raises ExportError unless `forget_bias` is a finite real number (NaN or inf would be
    folded into every LSTM bias and written)."""
    if isinstance(forget_bias, bool) or not isinstance(forget_bias, (int, float)) \
            or not math.isfinite(forget_bias):
        raise ExportError(f"{prefix}: --forget-bias must be a finite number (the forget_bias "
                          f"the LSTM ran with, TF1's default 1.0), got {forget_bias!r}")


def check_plan(export_plan, specs):
    """Raises ExportError when the exported stack or its extras cannot become Keras weights.

    Args:
      export_plan: an ExportPlan (`structure.plan_export` or a cuDNN plan).
      specs: the checkpoint's TensorSpecs (name, shape, dtype).
    Raises:
      ExportError: a tensor is not floating-point; a shared stack runs more than
        MAX_SHARED_LAYERS times; the stack has 0 units; the embedding table has no rows;
        the Dense kernel has 0 units.
    """
    stack, prefix = export_plan.stack, export_plan.prefix
    if stack is None:
        return
    dtype_of = {spec.name: spec.dtype for spec in specs}
    shape_of = {spec.name: tuple(spec.shape) for spec in specs}
    for role, name in _roles(export_plan):
        dtype = dtype_of.get(name)
        if dtype is not None and dtype not in FLOAT_DTYPES:
            raise ExportError(
                f"{prefix}: {name} is {dtype} {format_shape(shape_of[name])}, but {role} must "
                f"hold floating-point numbers ({', '.join(sorted(FLOAT_DTYPES))}); a model cannot be "
                f"made of it: check with `legacy-share inspect` that it is the tensor meant",
                tensor=name, file=prefix)
    _check_sizes(export_plan)


def _roles(export_plan):
    """[(role, tensor name)] of every tensor the exported model is made of."""
    roles = [(f"a weight of {stack.scope}", name) for stack in export_plan.chain
             for cell in stack.sources.values() for names in cell.values() for name in names]
    for kind, extra in (("--embedding", export_plan.embedding), ("--dense", export_plan.dense)):
        roles += [(f"the {kind} tensor", name)
                  for names in (extra.sources if extra else ()) for name in names]
    return roles


def model_dtype(export_plan, specs):
    """(the dtype the Keras model computes in, the dtype its tensors are stored in).

    float64 and float32 weights are kept as they are; float16 and bfloat16 weights are computed
    in float32 (a Keras RNN in half precision does not compute what the TF1 graph did).

    Raises:
      ExportError: the model's tensors are of more than one dtype (named, two of them).
    """
    if export_plan.stack is None:
        return "float32", "float32"
    dtype_of = {spec.name: spec.dtype for spec in specs}
    first_of = {}
    for role, name in _roles(export_plan):
        if name in dtype_of:
            first_of.setdefault(dtype_of[name], (role, name))
    if len(first_of) > 1:
        (a, (_, a_name)), (b, (b_role, b_name)) = sorted(first_of.items())[:2]
        raise ExportError(
            f"{export_plan.prefix}: {a_name} is {a} but {b_name} ({b_role}) is {b}: the "
            f"tensors of one exported model must share one dtype, and a Keras model computes in "
            f"one; cast the checkpoint's tensors to one dtype first, or export them apart",
            tensor=b_name, file=export_plan.prefix)
    stored = next(iter(first_of), "float32")
    return ("float64" if stored == "float64" else "float32"), stored


def _check_sizes(export_plan):
    for stack in export_plan.chain:
        _check_stack_size(export_plan.prefix, stack)
    _check_extra_sizes(export_plan)


def _check_stack_size(prefix, stack):
    if stack.shared and stack.layers is not None and stack.layers > MAX_SHARED_LAYERS:
        raise ExportError(
            f"{prefix}: --layers {stack.layers}: {stack.scope} would run its one layer "
            f"{stack.layers} times; at most {MAX_SHARED_LAYERS} are exported (each run is a "
            f"node of the Keras model, and Keras fails on deep models); give the K the graph "
            f"ran with")
    if stack.units < 1:
        raise ExportError(f"{prefix}: {stack.scope} has 0 units (its kernel has no columns); "
                          f"a layer of 0 units computes nothing and cannot be exported",
                          tensor=stack.scope, file=prefix)


def _check_extra_sizes(export_plan):
    prefix, embedding, dense = export_plan.prefix, export_plan.embedding, export_plan.dense
    if embedding is not None and embedding.shapes[0][:1] == (0,):
        name = embedding.sources[0][0]
        raise ExportError(f"{prefix}: --embedding {name} has shape "
                          f"{format_shape(embedding.shapes[0])}: a table of 0 rows has no id "
                          f"to look up; name the model's embedding table [vocabulary, depth]",
                          tensor=name, file=prefix)
    if dense is not None and len(dense.shapes[0]) == 2 and dense.shapes[0][1] == 0:
        name = dense.sources[0][0]
        raise ExportError(f"{prefix}: --dense kernel {name} has shape "
                          f"{format_shape(dense.shapes[0])}: a Dense layer of 0 units outputs "
                          f"nothing; name the kernel [{dense.shapes[0][0]}, units] of the "
                          f"model's output layer", tensor=name, file=prefix)
