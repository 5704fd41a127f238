"""The express path: compiled revisions applied without Alembic, with every guarantee kept.

Each test that claims the express path ran makes the Alembic path fail loudly
(``alembic_path_forbidden``), so a silent fall-back cannot pass for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import audit, compiled, introspect, locking, migrate, running
from alquimista_schema.database import connect
from alquimista_schema.errors import DeadlineExceeded, MigrationFailed, NotAdopted

ROOT = Path(__file__).resolve().parents[1]

REVISION = '''"""{doc}"""
{imports}
from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None
{extra}

def upgrade() -> None:
{body}


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS started_{rev}")
'''


def write(versions: Path, rev: str, down: str, body: str, *, doc: str = "Generated.",
          imports: str = "", extra: str = "") -> None:
    (versions / f"{rev}_express.py").write_text(REVISION.format(
        doc=doc, rev=rev, down=down, body=body, imports=imports, extra=extra))


def plain_chain(versions: Path, bodies: dict[str, str]) -> None:
    down = "021"
    for rev, body in bodies.items():
        write(versions, rev, down, body, doc=f"Revision {rev}.")
        down = rev


@pytest.fixture
def alembic_path_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the upgrade went through Alembic, not the express path")

    monkeypatch.setattr(running, "move", forbidden)


def compile_now() -> compiled.Chain:
    compiled.refresh(migrate.script_directory())
    chain = compiled.load()
    assert chain is not None
    return chain


def started(url: URL, revs: list[str]) -> list[str]:
    with connect(url) as conn:
        return [rev for rev in revs if conn.execute(
            text("SELECT to_regclass(:t)"), {"t": f"started_{rev}"}).scalar() is not None]


def test_compiled_statements_are_alembics_own_offline_sql() -> None:
    """What express runs is, statement for statement, what `alquimista-schema sql` prints."""
    chain = compile_now()
    offline = migrate.sql("base:head")
    expected = [s.strip() + ";" for s in offline.split(";\n\n")
                if s.strip() and not s.strip().startswith(("SET ", "BEGIN", "COMMIT"))]
    expected = ["\n".join(line for line in s.splitlines() if not line.startswith("-- Running"))
                .strip() for s in expected]
    ours = [chain.version_table_sql]
    for rev in chain.revisions:
        assert rev.statements is not None, rev.why
        ours += [*rev.statements, rev.version_sql]
    assert ours == [s for s in expected if s]
    assert [r.revision for r in chain.revisions] == [
        i.revision for i in migrate.history()]


def test_express_builds_what_alembic_builds(empty_url: URL, pg_server: URL,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    compile_now()
    other = empty_url.set(database=f"{empty_url.database}_alembic")
    with connect(pg_server) as admin:
        admin.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            f'CREATE DATABASE "{other.database}"')
    try:
        slow = migrate.upgrade(other, "head", run=migrate.Run(compiled=False))
        monkeypatch.setattr(running, "move", lambda *a, **k: pytest.fail("not express"))
        lines: list[str] = []
        fast = migrate.upgrade(empty_url, "head", on_applied=lambda a: lines.append(a.revision))
        assert (fast.from_revision, fast.to_revision) == (slow.from_revision, slow.to_revision)
        assert [a.revision for a in fast.applied] == [a.revision for a in slow.applied] == lines
        assert [a.description for a in fast.applied] == [a.description for a in slow.applied]
        assert all(a.duration_ms > 0 for a in fast.applied)
        snapshots = []
        for url in (empty_url, other):
            with connect(url) as conn:
                snapshots.append(introspect.snapshot(conn))
                [row] = audit.entries(conn)
                assert (row["outcome"], row["from_revision"], row["to_revision"]) == (
                    "success", None, "021")
                assert [a["revision"] for a in row["applied"]] == lines
        assert snapshots[0] == snapshots[1]
        monkeypatch.undo()
        migrate.check(empty_url)  # the models match the database express built
    finally:
        with connect(pg_server) as admin:
            admin.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                f'DROP DATABASE "{other.database}" WITH (FORCE)')


def test_a_cold_process_upgrades_without_sqlalchemy_or_alembic(empty_url: URL) -> None:
    compile_now()
    code = ("import sys\nfrom alquimista_schema.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic'}))")
    done = subprocess.run(
        [sys.executable, "-c", code, "upgrade", "head", "--url",
         empty_url.render_as_string(hide_password=False)],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"  # neither was imported
    assert "applied 6 revision(s): base -> 021" in done.stdout
    assert migrate.current(empty_url) == "021"


def test_a_stale_or_foreign_compiled_file_is_never_used(head_url: URL, scratch_scripts: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    compile_now()
    plain_chain(scratch_scripts, {"022": "    op.execute('CREATE TABLE started_022 (id int)')"})
    assert compiled.load() is None  # a revision was added since
    moved: list[str] = []
    original = running.move

    def counting(*args: Any, **kwargs: Any) -> Any:
        moved.append("alembic")
        return original(*args, **kwargs)

    monkeypatch.setattr(running, "move", counting)
    assert [a.revision for a in migrate.upgrade(head_url, "head").applied] == ["022"]
    assert moved == ["alembic"]
    chain = compiled.load()  # written after that upgrade
    assert chain is not None
    assert chain.head == "022"
    # A file edited since it was compiled: the fingerprint no longer matches.
    path = scratch_scripts / "022_express.py"
    path.write_text(path.read_text().replace("started_022 (id int)", "started_022 (id bigint)"))
    assert compiled.load() is None
    data = json.loads(compiled.path().read_text())
    data["fingerprint"] = compiled.fingerprint()
    data["revisions"][0]["unexpected"] = 1  # another release's shape
    compiled.path().write_text(json.dumps(data))
    assert compiled.load() is None


@pytest.mark.parametrize(("imports", "extra", "body", "why"), [
    ("import time", "", "    time.sleep(0)\n    op.execute('SELECT 1')", "it imports time"),
    ("", "", "    op.get_bind().exec_driver_sql('SELECT 1')", "it uses get_bind"),
    ("", "", "    with op.get_context().autocommit_block():\n        op.execute('SELECT 1')",
     "it uses autocommit_block, get_context"),
    ("", 'ONLINE_ONLY = "reads a feature flag"', "    op.execute('SELECT 1')",
     "it says ONLINE_ONLY: reads a feature flag"),
    ("", "", "    with open('/dev/null') as f:\n        op.execute(f.read() or 'SELECT 1')",
     "it uses open"),
    ("from alquimista_schema import schema_objects", "", "    op.execute('SELECT 1')",
     "it imports alquimista_schema"),
    ("from alembic import context", "",
     "    op.execute(context.get_x_argument(as_dictionary=True).get('sql', 'SELECT 1'))",
     "it imports alembic.context"),
    ("from alembic.op import get_bind as gb", "", "    gb()", "it imports alembic.op.get_bind"),
    ("", "", "    raise RuntimeError('only online')", "does not render offline (RuntimeError)"),
    ("", "", "    op.execute('COMMIT')", "it leaves the revision's transaction"),
])
def test_a_revision_that_needs_alembic_is_left_to_it(
        head_url: URL, scratch_scripts: Path, imports: str, extra: str, body: str,
        why: str) -> None:
    write(scratch_scripts, "022", "021", body, imports=imports, extra=extra)
    plain_chain_after = "    op.execute('CREATE TABLE started_023 (id int)')"
    write(scratch_scripts, "023", "022", plain_chain_after)
    chain = compile_now()
    by_id = {r.revision: r for r in chain.revisions}
    assert by_id["022"].statements is None
    assert why in (by_id["022"].why or "")
    assert by_id["023"].statements == ["CREATE TABLE started_023 (id int);"]
    if "RuntimeError" in body or "COMMIT" in body:
        return  # such a revision fails online too; only its compilation is in question
    result = migrate.upgrade(head_url, "head")  # through Alembic: 022 is not compiled
    assert [a.revision for a in result.applied] == ["022", "023"]


def test_only_a_linear_history_is_compiled(scratch_scripts: Path) -> None:
    write(scratch_scripts, "022", "021", "    op.execute('SELECT 1')")
    write(scratch_scripts, "023", "021", "    op.execute('SELECT 2')")  # a second head
    assert compiled.render(migrate.script_directory()) is None
    assert compiled.refresh(migrate.script_directory()) is None
    assert compiled.load() is None


def test_the_deadline_passing_partway_stops_before_the_next_revision(
        head_url: URL, scratch_scripts: Path, alembic_path_forbidden: None) -> None:
    """Many tiny statements: no statement_timeout stops them, the check before 023 does."""
    plain_chain(scratch_scripts, {
        "022": "    op.execute('CREATE TABLE started_022 (id int)')\n"
               "    for _ in range(250):\n        op.execute('SELECT pg_sleep(0.01)')",
        "023": "    op.execute('CREATE TABLE started_023 (id int)')",
        "024": "    op.execute('CREATE TABLE started_024 (id int)')",
    })
    compile_now()
    seen: list[str] = []
    run = migrate.Run(deadline=time.monotonic() + 1.0 + 1.5, margin=1.0)
    with pytest.raises(DeadlineExceeded) as caught:
        migrate.upgrade(head_url, "head", run=run, on_applied=lambda a: seen.append(a.revision))
    assert str(caught.value).startswith("stopped before revision 023: too little time left")
    assert "the database is at 022" in str(caught.value)
    progress = caught.value.progress
    assert isinstance(progress, migrate.Result)
    assert (progress.from_revision, progress.to_revision) == ("021", "022")
    assert [a.revision for a in progress.applied] == ["022"] == seen
    assert progress.applied[0].duration_ms >= 2500  # 250 x 10 ms, timed once committed
    assert started(head_url, ["022", "023", "024"]) == ["022"]  # 023 never started
    with connect(head_url) as conn:
        row = audit.entries(conn)[0]  # the newest (the template's own upgrade is older)
    assert (row["outcome"], row["error_code"], row["to_revision"]) == (
        "error", "DEADLINE", "022")
    assert [a.revision for a in migrate.upgrade(head_url, "head").applied] == ["023", "024"]


def test_a_statement_that_would_outlive_the_deadline_is_cancelled(
        head_url: URL, scratch_scripts: Path, alembic_path_forbidden: None) -> None:
    """The backstop: statement_timeout capped at the time left, inside the revision."""
    plain_chain(scratch_scripts, {
        "022": "    op.execute('CREATE TABLE started_022 (id int)')\n"
               "    op.execute('SELECT pg_sleep(30)')",
    })
    compile_now()
    run = migrate.Run(deadline=time.monotonic() + 1.0 + 2.0, margin=1.0)
    began = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="revision 022 was cancelled and rolled back"):
        migrate.upgrade(head_url, "head", run=run)
    assert time.monotonic() - began < 10
    assert started(head_url, ["022"]) == []
    assert migrate.current(head_url) == "021"


def test_a_failing_revision_is_named_and_the_ones_before_it_stay(
        head_url: URL, scratch_scripts: Path, alembic_path_forbidden: None) -> None:
    plain_chain(scratch_scripts, {
        "022": "    op.execute('CREATE TABLE started_022 (id int)')",
        "023": "    op.execute('CREATE TABLE started_023 (id int)')\n"
               "    op.execute('SELECT * FROM no_such_table')",
        "024": "    op.execute('CREATE TABLE started_024 (id int)')",
    })
    compile_now()
    with pytest.raises(MigrationFailed, match='revision 023 failed and was rolled back: '
                                              'relation "no_such_table" does not exist') as c:
        migrate.upgrade(head_url, "head")
    assert c.value.revision == "023"
    progress = c.value.progress
    assert isinstance(progress, migrate.Result)
    assert [a.revision for a in progress.applied] == ["022"]
    assert migrate.current(head_url) == "022"
    assert started(head_url, ["022", "023", "024"]) == ["022"]
    with connect(head_url) as conn:
        held = conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                 "AND objid = (:k & x'ffffffff'::bigint)::oid"),
                            {"k": locking.LOCK_KEY}).scalar()
        row = audit.entries(conn)[0]  # the newest
    assert held == 0
    assert (row["outcome"], row["error_code"], row["from_revision"], row["to_revision"]) == (
        "error", "MIGRATION_FAILED", "021", "022")


def test_what_express_is_unsure_of_goes_to_the_full_path(legacy_url: URL) -> None:
    """An unversioned database holding objects: the full path refuses it (NOT_ADOPTED)."""
    compile_now()
    with pytest.raises(NotAdopted):
        migrate.upgrade(legacy_url, "head")
    with connect(legacy_url) as conn:
        assert conn.execute(text("SELECT to_regclass('alembic_version')")).scalar() is None
        assert conn.execute(text(f"SELECT to_regclass('{audit.TABLE}')")).scalar() is None


def test_percent_signs_and_trailing_comments_run_as_written(
        head_url: URL, scratch_scripts: Path, alembic_path_forbidden: None) -> None:
    """A literal % stays one % (not the pyformat %%), and a statement's trailing -- comment
    cannot swallow the end of it (Alembic renders 'stmt -- note;')."""
    plain_chain(scratch_scripts, {
        "022": "    op.execute(\"CREATE TABLE started_022 (pct text DEFAULT '100%', c text)\")\n"
               "    op.execute(\"INSERT INTO started_022 (c) VALUES ('a%b') -- one row\\n\")",
        "023": "    op.execute('CREATE TABLE started_023 (id int) -- trailing note')",
    })
    chain = compile_now()
    assert chain.revisions[-2].statements == [
        "CREATE TABLE started_022 (pct text DEFAULT '100%', c text);",
        "INSERT INTO started_022 (c) VALUES ('a%b') -- one row;"]
    assert [a.revision for a in migrate.upgrade(head_url, "head").applied] == ["022", "023"]
    with connect(head_url) as conn:
        assert conn.execute(text("SELECT pct, c FROM started_022")).all() == [("100%", "a%b")]
    assert started(head_url, ["023"]) == ["023"]


def test_the_urls_own_options_never_clash_with_the_runners(
        empty_url: URL, alembic_path_forbidden: None) -> None:
    compile_now()
    url = empty_url.update_query_dict({"application_name": "mine", "connect_timeout": "3"})
    assert migrate.upgrade(url.render_as_string(hide_password=False), "head").to_revision == "021"
