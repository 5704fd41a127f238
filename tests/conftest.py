"""The suite's fixtures are plugins in tests/support (loaded here); helpers are there too."""

import pytest

pytest_plugins = [
    "tests.support.leaks", "tests.support.database", "tests.support.aws", "tests.support.doors",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest test first (the next revisions, about five minutes): under `make test`
    (pytest-xdist, a file per worker at a time) it then runs beside the rest, not after."""
    items.sort(key=lambda item: "tests/script/test_next_revisions.py" not in item.nodeid)
