"""``StrictModel``: the base of every evalkit data model (files, reports, results).

Unknown fields are an error, never silently dropped: a misspelt key in a scenario, a gate
file or a ``mutation.json`` read back is reported with its name instead of being ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StrictModel"]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
