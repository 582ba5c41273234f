"""The value types of `legacy-share`'s flags: each parses one flag's text or raises
argparse.ArgumentTypeError with what was expected (argparse turns it into a usage error, exit 2).
"""

import argparse
import math

from legacy_share import errors
from legacy_share.plans import Strategy

__all__ = ["rename", "tolerance", "clip", "real", "dense", "strategy", "layer", "positive"]


def rename(text):
    """"OLD=NEW" -> (old, new), OLD a valid rename regex (patterns.compile_rename)."""
    from legacy_share import patterns  # pylint: disable=import-outside-toplevel
    old, sep, new = text.partition("=")
    if not sep or not old:
        raise argparse.ArgumentTypeError(f"expected OLD=NEW, got {text!r}")
    try:
        patterns.compile_rename(old, new)
    except errors.PlanError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return (old, new)


def tolerance(text):
    """A finite number >= 0."""
    return _finite(text, zero_ok=True)  # finite: JSON has no NaN nor Infinity


def clip(text):
    """A finite number > 0."""
    return _finite(text, zero_ok=False)


def _finite(text, zero_ok):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    above_zero = value >= 0.0 if zero_ok else value > 0.0  # False for NaN
    if not (above_zero and value < float("inf")):
        raise argparse.ArgumentTypeError(
            f"expected a finite number {'>=' if zero_ok else '>'} 0, got {text!r}")
    return value


def real(text):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def dense(text):
    """"KERNEL[,BIAS]" -> (kernel,) or (kernel, bias): tensor names."""
    kernel, _, bias = text.partition(",")
    if not kernel.strip() or "," in bias:
        raise argparse.ArgumentTypeError(
            f"expected KERNEL or KERNEL,BIAS (tensor names), got {text!r}")
    return (kernel, bias) if bias else (kernel,)


def strategy(text):
    """The planner's own grammar (`Strategy.parse`), so the CLI and the API accept the same text."""
    try:
        return str(Strategy.parse(text))
    except errors.PlanError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def layer(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a layer index >= 0, got {text!r}")
    return value


def positive(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of layers, got {text!r}")
    return value
