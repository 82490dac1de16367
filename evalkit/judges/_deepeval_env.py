"""Importing deepeval the one way evalkit does: with its telemetry, ``.env`` loading, key file
and update checks off.

deepeval reads these switches from the process environment when it is imported, so they are
set there (process-wide by necessity; they only ever turn deepeval's side effects off).
"""

from __future__ import annotations

import os
import threading
from typing import Any

__all__ = ["import_deepeval"]

# Set before deepeval is first imported: no telemetry, no .env loading, no key file.
_ENV = {
    "DEEPEVAL_TELEMETRY_OPT_OUT": "YES",
    "DEEPEVAL_DISABLE_DOTENV": "1",
    "DEEPEVAL_DISABLE_LEGACY_KEYFILE": "1",
    "DEEPEVAL_UPDATE_WARNING_OPT_IN": "0",
    "DEEPEVAL_GRPC_LOGGING": "0",
}
_import_lock = threading.Lock()


def import_deepeval() -> Any:
    """Import deepeval with telemetry, .env loading and update checks off; returns the module."""
    with _import_lock:
        os.environ["DEEPEVAL_TELEMETRY_OPT_OUT"] = "YES"  # never let telemetry on, whatever the env says
        for key, value in _ENV.items():
            os.environ.setdefault(key, value)
        import deepeval

    return deepeval
