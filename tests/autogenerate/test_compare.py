"""Autogenerate and check: nothing at head, exactly the change made, never others' objects."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import DriftDetected, SchemaError
from alquimista_schema.schema import models, objects


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
    with pytest.raises(SchemaError, match="not at head 021: upgrade it first"):
        command.check(empty_url)


def test_a_new_column_fails_check_and_autogenerates_exactly_that(
        head_url: URL, scratch_scripts: Path) -> None:
    md = copy_metadata()
    md.tables["dry_run_log"].append_column(Column("canal_detalhe", String(50)))
    with pytest.raises(DriftDetected) as caught:
        command.check(head_url, metadata=md)
    assert caught.value.differences == ["add column dry_run_log.canal_detalhe (VARCHAR(50))"]

    [path] = command.revision("add canal_detalhe", url=head_url, autogenerate=True, metadata=md)
    assert path.parent == scratch_scripts
    assert path.name == "022_add_canal_detalhe.py"
    assert upgrade_ops(path) == ["add_column"]
    assert "sa.Column('canal_detalhe', sa.String(length=50), nullable=True)" in path.read_text()

    result = command.upgrade(head_url, "head")
    assert [a.revision for a in result.applied] == ["022"]
    command.check(head_url, metadata=md)  # raises DriftDetected on any difference
    command.downgrade(head_url, "021")
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

    [path] = command.revision("slimmer stats", url=head_url, autogenerate=True, metadata=md)
    source = path.read_text()
    assert upgrade_ops(path) == ["execute", "execute"]
    assert "CREATE OR REPLACE VIEW v_stats_ingestao" in source
    assert "COMMENT ON VIEW v_stats_ingestao IS NULL" in source  # declared without one
    # CREATE OR REPLACE cannot drop columns: this change needs a hand edit, which the
    # developer sees at once when the revision fails on a scratch database.
    with pytest.raises(Exception, match="cannot drop columns from view"):
        command.upgrade(head_url, "head")
    assert command.current(head_url) == "021"


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
    command.downgrade(head_url, "021")
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
    [path] = command.revision("comment lead_id", url=head_url, autogenerate=True, metadata=md)
    assert upgrade_ops(path) == ["alter_column"]
    command.upgrade(head_url, "head")
    assert comment_of(head_url, COLUMN_COMMENT) == "Lead avaliado (sem FK: o log sobrevive)"
    command.check(head_url, metadata=md)  # raises DriftDetected on any difference
    command.downgrade(head_url, "021")
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
    [path] = command.revision("stats comment", url=head_url, autogenerate=True, metadata=md)
    assert "COMMENT ON VIEW v_stats_ingestao IS 'Estatísticas por arquivo de origem'" \
        in path.read_text()
    command.upgrade(head_url, "head")
    sql = "SELECT obj_description('v_stats_ingestao'::regclass, 'pg_class')"
    assert comment_of(head_url, sql) == "Estatísticas por arquivo de origem"
    command.check(head_url, metadata=md)  # raises DriftDetected on any difference
    command.downgrade(head_url, "021")
    assert comment_of(head_url, sql) == "Estatísticas de ingestão por arquivo"
