"""Project-wide test settings."""

import os

from hypothesis import settings

# Property tests explore the same examples on every run: CI results do not depend on luck,
# and a failure found once is found again. Set HYPOTHESIS_PROFILE=explore to search anew.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile("explore" if os.environ.get("HYPOTHESIS_PROFILE") == "explore" else "ci")
