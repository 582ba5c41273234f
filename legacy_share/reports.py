"""What every `--json` prints: a result's `to_dict()` as indented JSON with sorted keys.

The result dataclasses (Plan, Inspection, VerifyReport, ExportPlan, ExportReport) each say in
`to_dict()` which fields a reader of the JSON gets; this mixin turns that into text one way.
"""

import json

__all__ = ["JsonReport"]


class JsonReport:
    """Mixin: `to_json(**extra)` from the subclass's `to_dict()` (JSON-ready values only)."""

    def to_dict(self):
        raise NotImplementedError

    def to_json(self, **extra):
        """`to_dict()` with `extra` keys added, as indented JSON text with sorted keys."""
        return json.dumps(dict(self.to_dict(), **extra), indent=2, sort_keys=True)
