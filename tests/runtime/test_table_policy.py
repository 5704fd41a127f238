"""TABLE_POLICY (issue 29): a revision that would block writes while it rewrites or scans a
large table is refused under enforce (prod's default) unless it says why it is safe
(``BUSY_TABLE_WAIVER``), warned about under warn; nothing applied when refused. Through
every door (``door``, by name), against a real table of 200,000 rows."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import ConfigurationError
from alquimista_schema.settings import Settings
from tests.support.doors import Door
from tests.support.helpers import plain
from tests.support.revisions import scratch_revision


def rewrites(waiver: str = "") -> str:
    """A volatile default on the big table: a rewrite under ACCESS EXCLUSIVE."""
    return scratch_revision("zz_rewrites", "zz_big",
                            "ALTER TABLE zz_big ADD COLUMN u uuid DEFAULT gen_random_uuid()",
                            "ALTER TABLE zz_big DROP COLUMN u", module=waiver)


ROWS = 200_000


def big_table(folder: Path, url: URL) -> None:
    (folder / "versions" / "zz_big.py").write_text(scratch_revision(
        "zz_big", "c13", "CREATE TABLE zz_big (i int)", "DROP TABLE zz_big", "A big table."))
    command.upgrade(url, "zz_big")
    with psycopg.connect(plain(url), autocommit=True) as conn:
        conn.execute(b"INSERT INTO zz_big SELECT g FROM generate_series(1, %s) g", (ROWS,))
        conn.execute(b"ANALYZE zz_big")


def has_column(url: URL) -> bool:
    with connect(url) as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'zz_big' "
            "AND column_name = 'u'")).scalar())


@pytest.mark.parametrize("policy", ["enforce", "warn"])
def test_a_rewrite_of_a_large_table_is_refused_unless_waived_at_every_door(
        door: Door, head_url: URL, policy: str) -> None:
    big_table(door.folder, head_url)
    revision = door.folder / "versions" / "zz_rewrites.py"
    revision.write_text(rewrites())
    env = {"TABLE_POLICY": policy}
    done = door.run("upgrade", head_url, "head", env=env)
    flat = " ".join(done.output.split())
    assert "revision zz_rewrites: DANGER rewrite AccessExclusiveLock on zz_big" in flat, \
        done.output
    if policy == "warn":
        assert done.ok, done.output
        assert "(TABLE_POLICY=warn here; prod enforces it)" in flat
        assert has_column(head_url)
        return
    assert not done.ok, done.output
    assert "would block writes to zz_big" in flat, done.output
    assert "nothing was applied" in flat
    assert "BUSY_TABLE_WAIVER" in flat
    assert (command.current(head_url), has_column(head_url)) == ("zz_big", False)
    if door.name == "lambda":
        assert done.answer["error_code"] == "BUSY_TABLE_REFUSED", done.answer
    revision.write_text(rewrites(
        'BUSY_TABLE_WAIVER = "zz_big is written only by the nightly job"'))
    again = door.run("upgrade", head_url, "head", env=env)
    assert again.ok, again.output
    assert has_column(head_url)


def test_the_policy_is_enforce_in_prod_and_checked_like_every_setting() -> None:
    assert Settings.from_env({"ENVIRONMENT": "prod"}).table_policy == "enforce"
    assert Settings.from_env({}).table_policy == "off"
    assert Settings.from_env({"TABLE_POLICY": "WARN"}).table_policy == "warn"
    with pytest.raises(ConfigurationError, match="TABLE_POLICY must be enforce, warn or off"):
        Settings.from_env({"TABLE_POLICY": "maybe"})
