"""A wrong run setting is the same refusal at every door, before anything is touched
(issue 28): one line and exit 2 from the CLI, BAD_CONFIG from the Lambda, one ``FAILED:``
line from plain ``alembic``; the database stays where it was and no audit row is written.

Every setting a local door reads (settings.LOCAL_KEYS) is in the table, so a setting added
there without a wrong value here fails ``test_every_local_setting_has_a_wrong_value``.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import URL

from alquimista_schema import command, settings
from alquimista_schema.connect.database import connect
from alquimista_schema.runtime import audit
from tests.support.doors import Door
from tests.support.wrong_settings import LOCAL

WRONG = LOCAL


def test_every_local_setting_has_a_wrong_value() -> None:
    assert set(WRONG) == set(settings.LOCAL_KEYS)
    for name, value in WRONG.items():  # and each is wrong, for that setting alone
        problems = settings.Settings.problems({name: value})
        [problem] = problems.values()
        assert name in problem, (name, problems)


def newest_audit_row(url: URL) -> list[int]:
    """The newest audit row's id (none before the first run has made the table)."""
    with connect(url) as conn:
        return [row["id"] for row in audit.entries(conn, limit=1)]


@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_wrong_setting_is_refused_alike_at_every_door(
        door: Door, head_url: URL, name: str) -> None:
    before, newest = command.current(head_url), newest_audit_row(head_url)
    done = door.run("upgrade", head_url, "head", env={name: WRONG[name]})
    assert not done.ok, done.output
    assert name in done.output, done.output
    if door.name == "cli":
        assert done.status == 2, (done.status, done.output)
        assert done.output.strip().splitlines() == [done.output.strip()], done.output
        assert done.output.startswith("error: "), done.output
    elif door.name == "lambda":
        assert done.answer["error_code"] == "BAD_CONFIG", done.answer
    else:
        failed = [line for line in done.output.splitlines() if line.startswith("FAILED: ")]
        [line] = failed
        assert name in line, done.output
    assert command.current(head_url) == before
    assert newest_audit_row(head_url) == newest
