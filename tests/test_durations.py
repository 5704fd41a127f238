"""The one duration grammar (durations.py), as a table."""

from __future__ import annotations

import pytest

from alquimista_schema import durations
from alquimista_schema.errors import ConfigurationError


@pytest.mark.parametrize(("value", "seconds"), [
    ("250ms", 0.25), ("5s", 5.0), ("2min", 120.0), ("1h", 3600.0), ("0", 0.0), ("1500", 1.5),
    (" 15min ", 900.0), ("10 s", 10.0),
])
def test_durations_in_seconds(value: str, seconds: float) -> None:
    assert durations.seconds(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "banana", "-5s", "1.5s", "5d", "5 sec", "999999h", "1e3"])
def test_what_postgresql_would_not_take_is_bad_config(value: str) -> None:
    with pytest.raises(ConfigurationError, match="must look like 250ms"):
        durations.validate("lock_timeout", value)


def test_milliseconds_are_at_least_one() -> None:
    assert durations.milliseconds(0.0004) == "1ms"
    assert durations.milliseconds(2.5) == "2500ms"
