"""The options of one export, frozen: what `plan`, `build_model` and `export` were asked for."""

import dataclasses
import math
import os

from legacy_share.errors import ArgumentError

__all__ = ["ExportOptions", "check_tolerance"]

_NAMES = ("embedding", "cudnn_buffer")  # a scope or tensor name, or None


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """The settings a checkpoint does not store, as `legacy_share.keras.export` documents them.

    Built from explicit keywords only (a misspelt one is Python's TypeError naming it), so no
    setting can be dropped on the way to the planner.
    """

    stack: object = None
    layers: object = None
    custom_cells: bool = False
    forget_bias: object = 1.0
    embedding: object = None
    dense: object = None
    group_patterns: tuple = ()
    renames: tuple = ()
    excludes: tuple = ()
    meta: object = None
    cudnn: object = None
    cudnn_buffer: object = None
    cell_clip: object = None
    proj_clip: object = None
    assumptions: object = None  # tf2_layers.Assumptions: for tf.keras checkpoints only

    def __post_init__(self):
        """Raises ArgumentError for a value of the wrong type (values are checked later)."""
        for name in _NAMES:
            _check(name, getattr(self, name), lambda v: isinstance(v, str), "a name (str)")
        _check("stack", self.stack, lambda v: isinstance(v, str) or (
            isinstance(v, (list, tuple)) and v and all(isinstance(s, str) for s in v)),
               "a scope (str) or scopes in the order the data flows")
        _check("layers", self.layers, lambda v: isinstance(v, int) and not isinstance(v, bool)
               and v >= 1, "an integer >= 1")
        _check("custom_cells", self.custom_cells, lambda v: isinstance(v, bool), "True or False")
        _check("meta", self.meta, lambda v: isinstance(v, (str, os.PathLike)), "a path")
        _check("dense", self.dense, lambda v: isinstance(v, (str, tuple, list)),
               "\"KERNEL[,BIAS]\" or (kernel, bias) names")

    @classmethod
    def of_arguments(cls, arguments):
        """The options among a call's `locals()` (a KeyError when the signature lacks one)."""
        return cls(**{field.name: arguments[field.name] for field in dataclasses.fields(cls)})

    def naming(self):
        """{"group_patterns", "renames", "excludes"}: the migrator's naming rules (None: ())."""
        return {name: getattr(self, name) or () for name in ("group_patterns", "renames",
                                                             "excludes")}


def _check(name, value, fits, what):
    if value is not None and not fits(value):
        raise ArgumentError(f"{name} must be {what} (or None), got {value!r}")


def check_tolerance(tolerance):
    """Raises ArgumentError unless `tolerance` is a finite number >= 0 (the proof's bound)."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) \
            or not math.isfinite(tolerance) or tolerance < 0:
        raise ArgumentError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
