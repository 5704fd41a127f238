"""The rule for tests that need a tool this machine may lack (python3.12, node).

Elsewhere such a test skips with its reason; under ``CI=true`` it fails, so CI can never
go green by skipping the very tests it exists to run.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(what: str, how: str) -> NoReturn:
    """Skip for ``what`` missing here, or fail under CI=true; ``how`` says how to get it."""
    message = f"{what} is not available here ({how})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}: CI must provide it", pytrace=False)
    pytest.skip(message)
