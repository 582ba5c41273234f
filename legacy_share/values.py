"""The value of a plan's step (first / layer:K / mean / strict), the difference between layers,
and the digests a written tensor is checked against.

`max_difference` is the one difference between two layers: `--strategy strict` compares it with
its tolerance, and `inspect` reports it as MAX|DIFF|.
"""

import hashlib
import zlib

import numpy as np

from legacy_share import errors
from legacy_share.planning import FLOAT_DTYPES

__all__ = ["step_value", "max_difference", "max_layer_difference", "checksum", "fingerprint",
           "json_number"]

_CHUNK = 1 << 20  # elements per slice when averaging or comparing layers


def step_value(step, reader, strategy):
    """The value of output `step` computed from the open Checkpoint `reader` by `strategy`.

    COPY, RENAME and DUPLICATE carry the source bit for bit; MERGE picks or averages layers.

    Returns:
      numpy array of `step.shape` and `step.dtype` (strings: object array of bytes).
    Raises:
      PlanError: the plan does not fit `strategy`.
      IncompatibleShapeError, IncompatibleDtypeError: it does not fit the checkpoint.
      LayersDifferError: strict met layers that differ.
    """
    if step.action != "merge":
        return _layer_value(step, reader, 0)
    positions = len(step.layers)
    kind = strategy.kind
    if kind == "first":
        return _layer_value(step, reader, 0)
    if kind == "layer":
        if strategy.layer not in step.layers:
            raise errors.PlanError(
                f"{step.name}: layer {strategy.layer} does not exist (layers "
                f"{', '.join(map(str, step.layers))}); choose one of them for --strategy layer:K.")
        return _layer_value(step, reader, step.layers.index(strategy.layer))
    if kind == "mean":
        return _mean(step, reader, positions)
    if kind == "strict":
        return _strict(step, reader, positions, strategy.tolerance)
    raise errors.PlanError(f"unknown strategy {kind!r}: use first, layer:K, mean or strict.")


def max_difference(a, b, dtype):
    """The largest element-wise |a - b| of two layers of TF dtype name `dtype`.

    Exact for integers (a Python int: no float64 rounding). Floats: elements equal as values or
    both NaN count 0 (so do bit-identical ±inf), NaN against anything else or inf against
    another value counts inf. Other dtypes (string, bool): 0 if equal, else inf. Never NaN,
    never a numpy warning.

    Args:
      a, b: numpy arrays of the same shape.
    Returns:
      int for integer dtypes, float otherwise.
    """
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0
    if dtype.startswith(("int", "uint")):
        return _integer_difference(a.reshape(-1), b.reshape(-1))
    if dtype not in FLOAT_DTYPES and not dtype.startswith("complex"):
        return 0.0 if np.array_equal(a, b) else float("inf")
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    largest = 0.0
    with np.errstate(all="ignore"):
        for start in range(0, flat_a.size, _CHUNK):
            part_a = flat_a[start:start + _CHUNK].astype(np.complex128 if dtype.startswith(
                "complex") else np.float64)
            part_b = flat_b[start:start + _CHUNK].astype(part_a.dtype)
            same = (part_a == part_b) | (np.isnan(part_a) & np.isnan(part_b))
            difference = np.abs(part_a - part_b)
            difference[same] = 0.0
            difference[np.isnan(difference)] = np.inf
            largest = max(largest, float(np.max(difference)))
    return largest


def max_layer_difference(reader, names, dtype):
    """max over layers of `max_difference(first layer, layer)`: what strict compares -> number or None.

    Reads one layer at a time from the open Checkpoint `reader`; None for dtypes without a
    numeric difference (string, bool, resource, variant).
    """
    if not (dtype in FLOAT_DTYPES or dtype.startswith(("int", "uint", "complex"))):
        return None
    first = reader.read(names[0])
    return max(max_difference(first, reader.read(name), dtype) for name in names[1:])


def _integer_difference(flat_a, flat_b):
    largest = 0
    for start in range(0, flat_a.size, _CHUNK):
        part_a, part_b = flat_a[start:start + _CHUNK], flat_b[start:start + _CHUNK]
        if part_a.dtype.kind == "i":  # |a - b| of int64 fits uint64; wrap-around is exact there
            part_a, part_b = part_a.astype(np.int64), part_b.astype(np.int64)
            unsigned_a, unsigned_b = part_a.view(np.uint64), part_b.view(np.uint64)
            difference = np.where(part_a >= part_b, unsigned_a - unsigned_b,
                                  unsigned_b - unsigned_a)
        else:
            difference = np.where(part_a >= part_b, part_a - part_b, part_b - part_a)
        largest = max(largest, int(np.max(difference)))
    return largest


def json_number(value):
    """`value` for JSON: a number, None, or the string "inf" (JSON has no Infinity nor NaN)."""
    if value is None or not isinstance(value, float) or np.isfinite(value):
        return value
    return "inf" if value > 0 else "nan"


def checksum(value):
    """sha256 hex digest of a numpy value, its shape and dtype (strings: length-prefixed bytes)."""
    value = np.asarray(value)
    digest = hashlib.sha256(repr(value.shape).encode())
    if value.dtype == object or value.dtype.kind in "SU":
        digest.update(b"string")
        for item in value.reshape(-1):
            item = item if isinstance(item, bytes) else str(item).encode()
            digest.update(len(item).to_bytes(8, "little"))
            digest.update(item)
    else:
        digest.update(value.dtype.name.encode())
        digest.update(np.ascontiguousarray(value).reshape(-1).view(np.uint8))  # no copy
    return digest.hexdigest()


def fingerprint(value):
    """What a read-back must match -> (shape, dtype name, digest) for any value, strings too.

    The digest is CRC-32 of the bytes for numbers (memory speed, about 3x sha256; it catches any
    corruption a disk or a mixed-up tensor would cause) and `checksum` for strings.
    """
    value = np.asarray(value)
    if value.dtype == object or value.dtype.kind in "SU":
        return (tuple(value.shape), "string", checksum(value))
    flat = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
    return (tuple(value.shape), value.dtype.name, zlib.crc32(flat))


def _layer_value(step, reader, position):
    names = step.layer_sources()[position]  # Step checks on construction that it has them
    parts = [reader.read(name) for name in names]
    if len(parts) == 1:
        return _checked(step, parts[0], names)
    try:
        return _checked(step, np.concatenate(parts, axis=0), names)
    except ValueError as exc:
        shapes = ", ".join(f"{n} {list(p.shape)}" for n, p in zip(names, parts))
        raise errors.IncompatibleShapeError(
            f"{step.name}: shards cannot be concatenated on axis 0 ({shapes}).") from exc


def _checked(step, value, names):
    # A string tensor reads back as numpy bytes: an object array, or `S` for a scalar.
    got_dtype = "string" if value.dtype.kind in "OS" else value.dtype.name
    if tuple(value.shape) != tuple(step.shape):
        raise errors.IncompatibleShapeError(
            f"{step.name}: the plan expects shape {list(step.shape)} but {' + '.join(names)} "
            f"gives {list(value.shape)}; re-plan from this checkpoint.")
    if got_dtype != step.dtype:
        raise errors.IncompatibleDtypeError(
            f"{step.name}: the plan expects dtype {step.dtype} but {' + '.join(names)} "
            f"holds {got_dtype}; re-plan from this checkpoint.")
    return value


def _mean(step, reader, positions):
    if step.dtype not in FLOAT_DTYPES:
        raise errors.PlanError(
            f"{step.name}: cannot average layers of dtype {step.dtype}; use --strategy "
            f"first or layer:K, or --exclude this tensor.")
    total = None
    with np.errstate(all="ignore"):  # inf + -inf is NaN, as the mean of those layers is
        for position in range(positions):
            layer = _layer_value(step, reader, position)
            if total is None:
                total = layer.astype(np.float64)
                continue
            flat_total, flat_layer = total.reshape(-1), layer.reshape(-1)
            for start in range(0, flat_total.size, _CHUNK):
                flat_total[start:start + _CHUNK] += flat_layer[start:start + _CHUNK].astype(
                    np.float64)
        total /= positions
        return total.astype(layer.dtype)


def _strict(step, reader, positions, tolerance):
    first = _layer_value(step, reader, 0)
    for position in range(1, positions):
        other = _layer_value(step, reader, position)
        difference = max_difference(first, other, step.dtype)
        if difference > tolerance:
            numeric = step.dtype in FLOAT_DTYPES or step.dtype.startswith(("int", "uint", "complex"))
            shown = f"max abs difference {difference:.6g}" if numeric else "values differ"
            if isinstance(difference, int):
                shown = f"max abs difference {difference}"
            sources = step.layer_sources()
            raise errors.LayersDifferError(
                f"{reader.prefix}: {step.name}: layer {step.layers[0]} ({sources[0][0]}) and "
                f"layer {step.layers[position]} ({sources[position][0]}) differ ({shown} > "
                f"tolerance {tolerance:g}); use --strategy first or mean, or raise --tolerance.")
    return first
