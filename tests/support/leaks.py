"""The leak hook: any test whose captured stdout, stderr or log shows a watched password fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.helpers import leaks


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Fail any test whose captured stdout, stderr or log shows a watched password."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    captured = "\n".join(content for _, content in report.sections)
    found = leaks(captured)
    if found and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = f"secret leaked into captured output ({report.when}): {found}"
