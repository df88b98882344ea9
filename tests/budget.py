"""How much of each property test make test and .ci/run run.

``PERPCLEAR_FUZZ_PROFILE`` is "quick" (make test) or "ci" (.ci/run); the
``fuzz_profile`` fixture of tests/conftest.py refuses any other value.
"""

import os

PROFILE = os.environ.get("PERPCLEAR_FUZZ_PROFILE", "quick")


def examples(quick: int, ci: int) -> int:
    """Hypothesis examples for this profile."""
    return ci if PROFILE == "ci" else quick
