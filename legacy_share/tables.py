"""Text tables of plans and inspections: presentation only, no planning and no I/O."""

__all__ = ["format_shape", "format_columns", "format_bytes", "format_plan"]


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
