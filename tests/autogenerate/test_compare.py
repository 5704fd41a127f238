"""Autogenerate and check: nothing at head, exactly the change made, never others' objects."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.autogenerate import compare
from alquimista_schema.cli import main
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import DriftDetected, SchemaError
from alquimista_schema.runtime import audit
from alquimista_schema.schema import models, objects
from tests.support.helpers import ROOT, Invoke, full, secret_for
from tests.support.revisions import HEAD, NEXT


def copy_metadata() -> MetaData:
    """A throwaway copy of the package's metadata, schema objects included."""
    md = MetaData(naming_convention=models.NAMING_CONVENTION)
    for table in models.metadata.tables.values():
        table.to_metadata(md)
    md.info.update(models.metadata.info)
    return md


def upgrade_ops(path: Path) -> list[str]:
    source = path.read_text()
    body = source.split("def upgrade() -> None:")[1].split("def downgrade() -> None:")[0]
    return re.findall(r"^    op\.(\w+)\(", body, re.M)


def test_head_has_no_differences(head_url: URL) -> None:
    command.check(head_url)  # raises DriftDetected on any difference


def test_check_refuses_a_database_not_at_head(empty_url: URL) -> None:
    command.upgrade(empty_url, "017")
    with pytest.raises(SchemaError, match=f"not at head {HEAD}: upgrade it first"):
        command.check(empty_url)


def test_a_new_column_fails_check_and_autogenerates_exactly_that(
        head_url: URL, scratch_scripts: Path) -> None:
    md = copy_metadata()
    md.tables["dry_run_log"].append_column(Column("canal_detalhe", String(50)))
    with pytest.raises(DriftDetected) as caught:
        command.check(head_url, metadata=md)
    assert caught.value.differences == ["add column dry_run_log.canal_detalhe (VARCHAR(50))"]

    [path] = command.revision("add canal_detalhe", url=head_url, autogenerate=True,
                              metadata=md).revisions
    assert path.parent == scratch_scripts
    assert path.name == f"{NEXT}_add_canal_detalhe.py"
    assert upgrade_ops(path) == ["add_column"]
    assert "sa.Column('canal_detalhe', sa.String(length=50), nullable=True)" in path.read_text()

    result = command.upgrade(head_url, "head")
    assert [a.revision for a in result.applied] == [NEXT]
    command.check(head_url, metadata=md)  # raises DriftDetected on any difference
    command.downgrade(head_url, HEAD)
    with connect(head_url) as conn:
        assert conn.execute(text(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE column_name = 'canal_detalhe'")).scalar() == 0


def test_a_changed_view_is_detected_and_replaced_reversibly(
        head_url: URL, scratch_scripts: Path) -> None:
    md = copy_metadata()
    changed = objects.view(
        "v_stats_ingestao",
        "SELECT origem_arquivo, count(*) AS total_leads FROM leads GROUP BY origem_arquivo")
    md.info["schema_objects"] = tuple(
        changed if o.name == "v_stats_ingestao" else o for o in objects.REGISTRY)
    with pytest.raises(DriftDetected) as caught:
        command.check(head_url, metadata=md)
    assert caught.value.differences == ["replace view v_stats_ingestao"]

    [path] = command.revision("slimmer stats", url=head_url, autogenerate=True,
                              metadata=md).revisions
    source = path.read_text()
    assert upgrade_ops(path) == ["execute", "execute"]
    assert "CREATE OR REPLACE VIEW v_stats_ingestao" in source
    assert "COMMENT ON VIEW v_stats_ingestao IS NULL" in source  # declared without one
    # CREATE OR REPLACE cannot drop columns: this change needs a hand edit, which the
    # developer sees at once when the revision fails on a scratch database.
    with pytest.raises(Exception, match="cannot drop columns from view"):
        command.upgrade(head_url, "head")
    assert command.current(head_url) == HEAD


def test_a_changed_function_body_is_replaced_and_reverted(
        head_url: URL, scratch_scripts: Path) -> None:
    md = copy_metadata()
    fn = objects.GET_LEADS_PARA_DISPARO
    changed = replace(fn, create_sql=fn.create_sql.replace("ORDER BY l.data_ingestao ASC",
                                                           "ORDER BY l.data_ingestao DESC"))
    md.info["schema_objects"] = tuple(
        changed if o is fn else o for o in objects.REGISTRY)
    with pytest.raises(DriftDetected) as caught:
        command.check(head_url, metadata=md)
    assert caught.value.differences == [f"replace function {fn.name}"]
    command.revision("newest first", url=head_url, autogenerate=True, metadata=md)
    command.upgrade(head_url, "head")
    command.check(head_url, metadata=md)  # raises DriftDetected on any difference
    with connect(head_url) as conn:
        changed_def = conn.execute(text(
            "SELECT pg_get_functiondef(to_regprocedure(:f))"), {"f": fn.name}).scalar_one()
    assert "DESC" in changed_def
    command.downgrade(head_url, HEAD)
    with connect(head_url) as conn:
        reverted = conn.execute(text(
            "SELECT pg_get_functiondef(to_regprocedure(:f))"), {"f": fn.name}).scalar_one()
    assert "ORDER BY l.data_ingestao ASC" in reverted
    # dropped and re-created both ways: its comment is put back each time
    assert comment_of(head_url, f"SELECT obj_description(to_regprocedure('{fn.name}'))") == \
        fn.comment


UNMANAGED = [
    "CREATE SCHEMA alquimista_platform",
    "CREATE TABLE alquimista_platform.tenants (id uuid PRIMARY KEY, nome text)",
    "CREATE SCHEMA nigredo_leads",
    "CREATE TABLE nigredo_leads.leads (id serial PRIMARY KEY, updated_at timestamp)",
    "CREATE TRIGGER t_nigredo BEFORE UPDATE ON nigredo_leads.leads "
    "FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    "CREATE TABLE public.migrations (id serial PRIMARY KEY, name text NOT NULL)",
    "INSERT INTO public.migrations (name) VALUES ('001_init.sql'), ('017_dry_run_log.sql')",
    "CREATE VIEW public.v_platform AS SELECT 1 AS one",
    "CREATE FUNCTION public.platform_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'",
]

UNMANAGED_SNAPSHOT = """
    SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname IN ('alquimista_platform', 'nigredo_leads')
        OR c.relname IN ('migrations', 'v_platform')
    UNION ALL SELECT 'fn:' || p.oid::regprocedure::text FROM pg_proc p
     WHERE p.proname IN ('platform_fn', 'update_updated_at_column')
    UNION ALL SELECT 'trigger:' || tgname FROM pg_trigger WHERE tgname = 't_nigredo'
    UNION ALL SELECT 'row:' || name FROM public.migrations
     ORDER BY 1
"""


def test_unmanaged_objects_are_invisible_and_untouched(empty_url: URL) -> None:
    command.upgrade(empty_url, "lead_ingestion")
    with connect(empty_url) as conn:
        for statement in UNMANAGED:
            conn.execute(text(statement))
        conn.commit()
        before = list(conn.execute(text(UNMANAGED_SNAPSHOT)).scalars().all())
    assert "trigger:t_nigredo" in before
    command.upgrade(empty_url, "head")
    command.check(empty_url)  # raises DriftDetected on any difference
    command.downgrade(empty_url, "base")
    command.upgrade(empty_url, "head")
    with connect(empty_url) as conn:
        after = list(conn.execute(text(UNMANAGED_SNAPSHOT)).scalars().all())
        # the platform's trigger still works through the shared function
        conn.execute(text("INSERT INTO nigredo_leads.leads (updated_at) VALUES (NULL)"))
        conn.execute(text("UPDATE nigredo_leads.leads SET id = id"))
        assert conn.execute(text("SELECT updated_at FROM nigredo_leads.leads")).scalar()
    assert after == before


def test_shared_function_made_by_the_platform_is_never_dropped(empty_url: URL) -> None:
    with connect(empty_url) as conn:
        conn.execute(text("CREATE FUNCTION public.update_updated_at_column() RETURNS trigger "
                          "LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at = now(); "
                          "RETURN NEW; END $$"))
        conn.commit()
    command.upgrade(empty_url, "head")
    command.downgrade(empty_url, "base")
    with connect(empty_url) as conn:
        assert conn.execute(text(
            "SELECT to_regprocedure('public.update_updated_at_column()') IS NOT NULL")).scalar()


def comment_of(url: URL, sql: str) -> str | None:
    with connect(url) as conn:
        value = conn.execute(text(sql)).scalar()
        return None if value is None else str(value)


COLUMN_COMMENT = "SELECT col_description('dry_run_log'::regclass, 3)"  # lead_id


def test_a_changed_column_comment_fails_check_and_autogenerates_exactly_that(
        head_url: URL, scratch_scripts: Path) -> None:
    md = copy_metadata()
    md.tables["dry_run_log"].c.lead_id.comment = "Lead avaliado (sem FK: o log sobrevive)"
    with pytest.raises(DriftDetected) as caught:
        command.check(head_url, metadata=md)
    assert caught.value.differences == [
        "change comment of dry_run_log.lead_id: none -> Lead avaliado (sem FK: o log sobrevive)"]
    [path] = command.revision("comment lead_id", url=head_url, autogenerate=True,
                              metadata=md).revisions
    assert upgrade_ops(path) == ["alter_column"]
    command.upgrade(head_url, "head")
    assert comment_of(head_url, COLUMN_COMMENT) == "Lead avaliado (sem FK: o log sobrevive)"
    command.check(head_url, metadata=md)  # raises DriftDetected on any difference
    command.downgrade(head_url, HEAD)
    assert comment_of(head_url, COLUMN_COMMENT) is None


def test_a_changed_table_comment_fails_check(head_url: URL) -> None:
    md = copy_metadata()
    md.tables["leads"].comment = "Leads importados"
    with pytest.raises(DriftDetected) as caught:
        command.check(head_url, metadata=md)
    assert caught.value.differences == ["set comment of table leads: 'Leads importados'"]


def test_a_changed_view_comment_is_replaced_and_reverted(head_url: URL,
                                                         scratch_scripts: Path) -> None:
    md = copy_metadata()
    view = objects.V_STATS_INGESTAO
    changed = replace(view, comment="Estatísticas por arquivo de origem")
    md.info["schema_objects"] = tuple(
        changed if o is view else o for o in objects.REGISTRY)
    with pytest.raises(DriftDetected) as caught:
        command.check(head_url, metadata=md)
    assert caught.value.differences == ["replace view v_stats_ingestao"]
    [path] = command.revision("stats comment", url=head_url, autogenerate=True,
                              metadata=md).revisions
    assert "COMMENT ON VIEW v_stats_ingestao IS 'Estatísticas por arquivo de origem'" \
        in path.read_text()
    command.upgrade(head_url, "head")
    sql = "SELECT obj_description('v_stats_ingestao'::regclass, 'pg_class')"
    assert comment_of(head_url, sql) == "Estatísticas por arquivo de origem"
    command.check(head_url, metadata=md)  # raises DriftDetected on any difference
    command.downgrade(head_url, HEAD)
    assert comment_of(head_url, sql) == "Estatísticas de ingestão por arquivo"


# --- ownership: a name is owned only in the default schema -------------------------------

OTHER_SCHEMA = "nigredo_leads"


def table(name: str, schema: str | None = None) -> Table:
    return Table(name, MetaData(), Column("id", Integer, primary_key=True), schema=schema)


INCLUDE_OBJECT = [
    # what autogenerate asks about: type, name, schema; included?
    ("table", "leads", None, True),
    ("table", "dry_run_log", None, True),
    ("table", "leads", OTHER_SCHEMA, False),  # same name, another schema: never ours
    ("table", "dry_run_log", "alquimista_platform", False),
    ("table", "leads", "public", False),  # named explicitly: not how the models declare it
    ("table", "migrations", None, False),  # the legacy runner's table
    ("table", "alembic_version", None, False),
    ("table", audit.TABLE, None, False),
    ("table", "tenants", "alquimista_platform", False),
    ("column", "status", None, True),  # within an owned table: compared
    ("index", "idx_leads_status", None, True),
]


@pytest.mark.parametrize(("type_", "name", "schema", "included"), INCLUDE_OBJECT)
@pytest.mark.parametrize("reflected", [True, False], ids=["live", "models"])
def test_include_object_keeps_only_owned_tables_of_the_default_schema(
        type_: str, name: str, schema: str | None, included: bool, reflected: bool) -> None:
    _, include_object = compare.make_filters(models.metadata)
    obj: Any = table(name, schema) if type_ == "table" else \
        Index(name, table("leads").c.id) if type_ == "index" else table("leads").c.id
    assert include_object(obj, name, type_, reflected, None) is included


INCLUDE_NAME = [
    # type, name, parent names; reflected at all?
    ("schema", None, {}, True),  # the default schema
    ("schema", OTHER_SCHEMA, {}, False),
    ("schema", "public", {}, False),
    ("table", "leads", {"schema_name": None}, True),
    ("table", "migrations", {"schema_name": None}, False),
    ("table", "alembic_version", {"schema_name": None}, False),
    ("table", audit.TABLE, {"schema_name": None}, False),
    ("column", "anything", {"table_name": "leads"}, True),
]


@pytest.mark.parametrize(("type_", "name", "parents", "included"), INCLUDE_NAME)
def test_include_name_reflects_only_the_default_schemas_owned_tables(
        type_: str, name: str | None, parents: dict[str, Any], included: bool) -> None:
    include_name, _ = compare.make_filters(models.metadata)
    assert include_name(name, type_, parents) is included


def test_a_retired_table_is_still_owned_so_its_drop_can_be_generated() -> None:
    md = MetaData(info={"retired_tables": frozenset({"old_leads"})})
    include_name, include_object = compare.make_filters(md)
    assert include_name("old_leads", "table", {"schema_name": None}) is True
    assert include_object(table("old_leads"), "old_leads", "table", True, None) is True
    assert include_object(table("old_leads", OTHER_SCHEMA), "old_leads", "table", True,
                          None) is False


def foreign_leads(md: MetaData) -> Table:
    """A model of another team's table that shares an owned name (nigredo_leads.leads)."""
    return Table("leads", md, Column("id", Integer, primary_key=True),
                 Column("email", String(200)), schema=OTHER_SCHEMA)


@pytest.fixture
def platform_leads(head_url: URL) -> Iterator[URL]:
    """A database at head with the platform's nigredo_leads.leads beside ours, and the
    package's models knowing of it (a model for it, as if added for a foreign key)."""
    with connect(head_url) as conn:
        conn.execute(text(f"CREATE SCHEMA {OTHER_SCHEMA}"))
        conn.execute(text(f"CREATE TABLE {OTHER_SCHEMA}.leads (id serial PRIMARY KEY, "
                          "email varchar(200))"))
        conn.commit()
    added = foreign_leads(models.metadata)
    try:
        yield head_url
    finally:
        models.metadata.remove(added)


def check_by_library(url: URL, invoke: Invoke, make_secret: Callable[..., str]) -> list[str]:
    try:
        command.check(url)
    except DriftDetected as exc:
        return exc.differences
    return []


def check_by_cli(url: URL, invoke: Invoke, make_secret: Callable[..., str]) -> list[str]:
    result = CliRunner().invoke(main, ["check", "--url", full(url)])
    return [] if result.exit_code == 0 else [result.output]


def drift_by_lambda(url: URL, invoke: Invoke, make_secret: Callable[..., str]) -> list[str]:
    answer = invoke({"action": "drift"}, secret=make_secret(secret_for(url)))
    assert answer["status"] == "success", answer
    return list(answer["differences"])


# plain alembic, in a process of its own whose models carry the foreign table too
ALEMBIC_CHECK = """
from alquimista_schema.schema import models
from tests.autogenerate.test_compare import foreign_leads
foreign_leads(models.metadata)
from alembic.config import main
main(["check"])
"""


def check_by_alembic(url: URL, invoke: Invoke, make_secret: Callable[..., str]) -> list[str]:
    env = {**os.environ, "DATABASE_URL": full(url)}
    done = subprocess.run([sys.executable, "-c", ALEMBIC_CHECK], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    output = done.stdout + done.stderr
    assert "No new upgrade operations detected" in output or done.returncode, output
    return [] if done.returncode == 0 else [output]


@pytest.mark.parametrize("door", [check_by_library, check_by_cli, drift_by_lambda,
                                  check_by_alembic],
                         ids=["library", "cli", "lambda", "alembic"])
def test_a_same_named_table_in_another_schema_is_never_compared(
        platform_leads: URL, invoke: Invoke, make_secret: Callable[..., str],
        door: Callable[..., list[str]]) -> None:
    assert door(platform_leads, invoke, make_secret) == []


def test_autogenerate_writes_nothing_for_a_same_named_table_in_another_schema(
        platform_leads: URL, scratch_scripts: Path) -> None:
    assert command.revision("nothing of ours", url=platform_leads,
                            autogenerate=True).revisions == []
    assert [p.name for p in scratch_scripts.glob(f"{NEXT}_*.py")] == []
