"""A timeout is read once per run, at its door, and travels as read (issue 28).

``ALQUIMISTA_LOCK_TIMEOUT`` goes door → settings.py (the one grammar, durations.py) →
``Run.from_settings`` → the skeleton → ``SET lock_timeout``: parsed exactly once at every
door, and never parsed again on the way (no round trip back to durations.py). Each door
runs in this process, so the parses can be counted where they happen.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from alembic.config import main as alembic_main
from click.testing import CliRunner
from sqlalchemy.engine import URL

from alquimista_schema import durations
from alquimista_schema.cli import main
from alquimista_schema.connect.database import connect
from alquimista_schema.runtime import audit
from tests.support.helpers import ROOT, Invoke, full, secret_for
from tests.support.revisions import HEAD

VALUE = "3s"


def through_cli(url: URL, env: dict[str, str], *, given: tuple[str, ...] = (),
                **_: Any) -> None:
    done = CliRunner().invoke(main, ["upgrade", "head", "--url", full(url), *given], env=env)
    assert done.exit_code == 0, done.output


def through_lambda(url: URL, env: dict[str, str], *, invoke: Invoke,
                   make_secret: Callable[..., str], **_: Any) -> None:
    answer = invoke({}, secret=make_secret(secret_for(url)), env=env)
    assert answer["status"] == "success", answer


def through_alembic(url: URL, env: dict[str, str], *, monkeypatch: pytest.MonkeyPatch,
                    given: tuple[str, ...] = (), **_: Any) -> None:
    for key, value in {**env, "DATABASE_URL": full(url)}.items():
        monkeypatch.setenv(key, value)
    alembic_main(["-c", str(ROOT / "alembic.ini"), *given, "upgrade", "head"])


DOORS: dict[str, Callable[..., None]] = {
    "cli": through_cli, "lambda": through_lambda, "alembic": through_alembic}


def parsed_during(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count each parse of VALUE, by the module that asked for it."""
    parses: Counter[str] = Counter()
    real = durations.validate

    def counted(name: str, value: str) -> durations.Duration:
        if str(value).strip() == VALUE:
            parses[sys._getframe(1).f_globals["__name__"]] += 1
        return real(name, value)

    monkeypatch.setattr(durations, "validate", counted)
    return parses


def upgraded(url: URL) -> None:
    with connect(url) as conn:
        [row] = audit.entries(conn, limit=1)
    assert row["to_revision"] == HEAD


@pytest.mark.parametrize("door", list(DOORS))
def test_the_environments_lock_timeout_is_parsed_once_at_every_door(
        door: str, empty_url: URL, monkeypatch: pytest.MonkeyPatch, invoke: Invoke,
        make_secret: Callable[..., str]) -> None:
    parses = parsed_during(monkeypatch)
    DOORS[door](empty_url, {"ALQUIMISTA_LOCK_TIMEOUT": VALUE}, invoke=invoke,
                make_secret=make_secret, monkeypatch=monkeypatch)
    upgraded(empty_url)
    # once, where the door reads its settings: the environment's value in settings.py
    assert parses == {"alquimista_schema.settings": 1}, json.dumps(parses)


# A door's own way to give it, and the one module that reads it there.
GIVEN = {
    "cli": (("--lock-timeout", VALUE), "alquimista_schema.cli.commands"),  # the option's check
    "alembic": (("-x", f"lock_timeout={VALUE}"), "alquimista_schema.durations"),  # setting()
}


@pytest.mark.parametrize("door", list(GIVEN))
def test_an_option_or_x_lock_timeout_is_parsed_once(
        door: str, empty_url: URL, monkeypatch: pytest.MonkeyPatch) -> None:
    given, reader = GIVEN[door]
    parses = parsed_during(monkeypatch)
    DOORS[door](empty_url, {}, given=given, monkeypatch=monkeypatch)
    upgraded(empty_url)
    assert parses == {reader: 1}, json.dumps(parses)
