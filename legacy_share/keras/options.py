"""The options of one export, frozen: what `plan`, `build_model` and `export` were asked for."""

import dataclasses

__all__ = ["ExportOptions"]


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

    @classmethod
    def of_arguments(cls, arguments):
        """The options among a call's `locals()` (a KeyError when the signature lacks one)."""
        return cls(**{field.name: arguments[field.name] for field in dataclasses.fields(cls)})

    def naming(self):
        """{"group_patterns", "renames", "excludes"}: the migrator's naming rules (None: ())."""
        return {name: getattr(self, name) or () for name in ("group_patterns", "renames",
                                                             "excludes")}
