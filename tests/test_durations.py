"""The one duration grammar (durations.py), as a table."""

from __future__ import annotations

import os

import pytest

from alquimista_schema import durations
from alquimista_schema.errors import ConfigurationError


@pytest.mark.parametrize(("value", "seconds"), [
    ("250ms", 0.25), ("5s", 5.0), ("2min", 120.0), ("1h", 3600.0), ("0", 0.0), ("1500", 1.5),
    (" 15min ", 900.0), ("10 s", 10.0),
])
def test_durations_in_seconds(value: str, seconds: float) -> None:
    assert durations.seconds(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [
    "", "banana", "-5s", "1.5s", "5d", "5 sec", "999999h", "1e3",
    "\u0665s", "\u0661\u0660", "\uff15s", "\u09e7min",  # digits PostgreSQL does not read
    "5\u2003s", "5\ns",  # nor spaces it does not skip
])
def test_what_postgresql_would_not_take_is_bad_config(value: str) -> None:
    with pytest.raises(ConfigurationError, match="must look like 250ms"):
        durations.validate("lock_timeout", value)


def test_milliseconds_are_at_least_one() -> None:
    assert durations.milliseconds(0.0004) == "1ms"
    assert durations.milliseconds(2.5) == "2500ms"


def test_the_environment_sets_the_timeouts_through_the_doors_settings_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """ALQUIMISTA_*_TIMEOUT is read by the doors (settings.local), validated there once;
    below the doors the grammar never looks at the environment."""
    from alquimista_schema import settings

    monkeypatch.setenv("ALQUIMISTA_LOCK_TIMEOUT", " 2s ")
    monkeypatch.delenv("ALQUIMISTA_STATEMENT_TIMEOUT", raising=False)
    assert durations.setting("lock_timeout") == "5s"  # the default: no environment here
    read = settings.local(os.environ)
    assert durations.setting("lock_timeout", None, read.lock_timeout) == "2s"
    assert durations.setting("lock_timeout", "750ms", read.lock_timeout) == "750ms"  # option wins
    assert durations.setting("statement_timeout", read.statement_timeout) == "15min"
    monkeypatch.setenv("ALQUIMISTA_STATEMENT_TIMEOUT", "\u0665s")
    with pytest.raises(ConfigurationError, match="ALQUIMISTA_STATEMENT_TIMEOUT must look like"):
        settings.local(os.environ)
