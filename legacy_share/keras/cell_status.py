"""The export status of one TF1 cell stack from its kind's own options (pure).

EXACT: a Keras layer computes it; CUSTOM: this package's LegacyLSTMCell does (peepholes,
projection, clips, with --custom-cells); REFUSED: nothing does, with the reason.
"""

from legacy_share import cell_kinds

__all__ = ["EXACT", "CUSTOM", "REFUSED", "cell_status", "takes_clips"]

EXACT, CUSTOM, REFUSED = "exact", "custom", "refused"


def cell_status(cell, cells, extras, custom_cells, clips):
    """(status, reason) from the cell's own options: peepholes, projection, clips."""
    status, reason = EXACT, ""
    if cell_kinds.by_scope(cell).custom_layer and extras:
        status = CUSTOM if custom_cells else REFUSED
        if not custom_cells:
            first = next(src for variables in cells.values() for v, srcs in variables.items()
                         for src in srcs if v in extras)
            what = "peepholes" if "diag" in first else "a projection"
            reason = (f"{first}: an LSTMCell with {what} has no Keras layer; --custom-cells "
                      f"(custom_cells=True) exports it with legacy_share's LegacyLSTMCell")
    if clips != (None, None) and takes_clips(cell) and status != REFUSED:
        status, reason = _clipped(extras, custom_cells, clips)
    return status, reason


def takes_clips(cell):
    """True when TF1 cell scope `cell` takes cell_clip / proj_clip (LSTMCell)."""
    return "cell_clip" in cell_kinds.by_scope(cell).settings


def _clipped(extras, custom_cells, clips):
    """(status, reason) of an LSTMCell stack exported with --cell-clip / --proj-clip."""
    if clips[1] is not None and cell_kinds.LSTM.projection not in extras:
        return REFUSED, ("--proj-clip clips a projection, and this LSTMCell has none "
                         "(no num_proj); leave it out")
    if not custom_cells:
        return REFUSED, ("no Keras layer clips the cell state or the projection; --custom-cells "
                         "(custom_cells=True) exports it with legacy_share's LegacyLSTMCell, "
                         "which does")
    return CUSTOM, ""
