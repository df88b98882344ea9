"""How much of each larger test make test and .ci/run run.

``PERPCLEAR_FUZZ_PROFILE`` is "quick" (make test) or "ci" (.ci/run); the
``fuzz_profile`` fixture of tests/conftest.py refuses any other value.
"""

import os

PROFILE = os.environ.get("PERPCLEAR_FUZZ_PROFILE", "quick")


def by_profile(quick: int, ci: int) -> int:
    """A test's size (Hypothesis examples, accounts checked, events) for this profile."""
    return ci if PROFILE == "ci" else quick
