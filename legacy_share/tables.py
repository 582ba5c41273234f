"""Text tables of plans and inspections: presentation only, no planning and no I/O."""

__all__ = ["format_shape", "format_columns", "format_bytes", "format_plan",
           "format_inspection"]


def format_shape(shape):
    """`[3, 4]` for shape (3, 4); shared by every table and message that shows a shape."""
    return "[" + ", ".join(map(str, shape)) + "]"


def format_columns(rows):
    """Rows of cells -> text lines with every column left-aligned to its widest cell."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in rows]


def format_bytes(nbytes):
    """`512 B`, `1.5 KiB`, ... `2.0 GiB`; `?` for None (unknown, e.g. strings)."""
    if nbytes is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return str(nbytes)


def format_plan(plan):
    """A Plan as text: one line per step (action, name, shape, dtype, sources), drops, notes, summary."""
    rows = []
    for step in plan.steps:
        if step.action == "copy" and step.sources == (step.name,):
            sources = ""
        elif step.action == "merge":
            sources = "layers {}: {}".format(",".join(map(str, step.layers)),
                                             ", ".join(step.sources))
        else:
            sources = ", ".join(step.sources)
        if step.shards > 1:
            sources += f" (concat {step.shards} shards each)"
        rows.append((step.action, step.name, format_shape(step.shape), step.dtype, sources))
    lines = format_columns(rows) if rows else []
    if plan.dropped:
        width = max(len(d.name) for d in plan.dropped)
        lines.extend(f"drop  {d.name.ljust(width)}  {d.reason}" for d in plan.dropped)
    lines.extend(f"note: {note}" for note in plan.notes)
    lines.extend(f"stack {check.scope}: {check.names} ({check.graph})"
                 for check in plan.stacks)
    lines.append(plan.summary())
    return "\n".join(lines)


def format_inspection(inspection, cudnn_routes):
    """A migration.Inspection as text: groups first (key, layers, shape, dtype, bytes per
    layer, shareable, max |diff|, route), then the variables without a layer, the cuDNN models
    (`cudnn_routes`: what migrate does with each), the notes, then a summary line."""
    rows = [("GROUP (merged name)", "LAYERS", "SHAPE", "DTYPE", "BYTES/LAYER", "SHAREABLE",
             "MAX|DIFF|", "ROUTE")]
    for g in inspection.groups:
        if g.shareable:
            shape, size = format_shape(g.shapes[0]), format_bytes(g.nbytes[0])
        else:
            shape = " | ".join(format_shape(s) for s in g.shapes)
            size = " | ".join(format_bytes(n) for n in g.nbytes)
        diff = "-" if g.max_abs_difference is None else f"{g.max_abs_difference:.6g}"
        rows.append((g.key, ",".join(map(str, g.layers)), shape, g.dtype, size,
                     "yes" if g.shareable else "NO", diff, g.route))
    lines = format_columns(rows)
    others = [v for v in inspection.variables if v.group is None]
    if others:
        lines.append("")
        header = ("VARIABLE (no layer)", "SHAPE", "DTYPE", "BYTES")
        lines.extend(format_columns([header] + [
            (v.name, format_shape(v.shape), v.dtype, format_bytes(v.nbytes))
            for v in others]))
    if inspection.cudnn:
        lines.append("")
        header = ("CUDNN BUFFER", "MODE", "LAYERS", "UNITS", "INPUT", "DIRECTIONS",
                  "LAYOUT FROM", "ROUTE")
        lines.extend(format_columns([header] + [
            (m.buffer or f"(none: {m.scope or '<root>'} canonical tensors)", m.layout.kind,
             m.layout.layers, m.layout.units, m.layout.input_size, m.layout.directions,
             m.source, route) for m, route in zip(inspection.cudnn, cudnn_routes)]))
    lines.extend(f"note: {note}" for note in inspection.notes)
    total = sum(v.nbytes or 0 for v in inspection.variables)
    lines.append("")
    lines.append(f"{inspection.checkpoint}: {len(inspection.variables)} variable(s), "
                 f"{format_bytes(total)}; {len(inspection.groups)} layer group(s), "
                 f"{sum(not g.shareable for g in inspection.groups)} not shareable"
                 + ("" if inspection.values_read
                    else "; data files missing, differences not computed"))
    return "\n".join(lines)
