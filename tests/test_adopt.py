"""Adopting databases the legacy SQL files built: verify exactly, stamp, or change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import audit, migrate
from alquimista_schema.adopt import adopt
from alquimista_schema.cli import main
from alquimista_schema.database import connect
from alquimista_schema.errors import DriftDetected
from tests.conftest import Invoke, secret_for

ROWS = [
    "INSERT INTO leads (lead_id_externo, origem_arquivo, origem_aba, nome, documento) VALUES "
    "('base.xlsx:2', 'base.xlsx', 'Leads', 'Ana', '123'), "
    "('base.xlsx:3', 'base.xlsx', 'Leads', 'Bruno', NULL)",
    "INSERT INTO lead_emails (lead_id, email, email_principal) "
    "SELECT lead_id, 'ana@x.com', true FROM leads WHERE nome = 'Ana'",
    "INSERT INTO lead_telefones (lead_id, telefone, telefone_principal) "
    "SELECT lead_id, '+5511999990000', true FROM leads",
    "INSERT INTO dry_run_log (tenant_id, lead_nome, canal_decidido, motivo_decisao) "
    "VALUES (gen_random_uuid(), 'Ana', 'whatsapp', 'tem telefone principal')",
]

DATA = """
    SELECT 'leads:' || string_agg(lead_id_externo || '/' || coalesce(nome, '') || '/'
                                  || status || '/' || tags::text, ',' ORDER BY lead_id_externo)
      FROM leads
    UNION ALL SELECT 'emails:' || string_agg(email, ',' ORDER BY email) FROM lead_emails
    UNION ALL SELECT 'phones:' || count(*) FROM lead_telefones
"""
DRY_RUN_DATA = "SELECT string_agg(lead_nome || '/' || canal_decidido, ',') FROM dry_run_log"

UNMANAGED = [
    "CREATE SCHEMA fibonacci_core",
    "CREATE TABLE fibonacci_core.jobs (id serial PRIMARY KEY, updated_at timestamp)",
    "CREATE TRIGGER t_jobs BEFORE UPDATE ON fibonacci_core.jobs "
    "FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    "CREATE TABLE public.migrations (id serial PRIMARY KEY, name text)",
    "INSERT INTO public.migrations (name) VALUES ('017_dry_run_log.sql')",
]


def run_sql(url: URL, *statements: str) -> None:
    with connect(url) as conn:
        for statement in statements:
            conn.execute(text(statement))
        conn.commit()


def fetch(url: URL, sql: str) -> list[Any]:
    with connect(url) as conn:
        return list(conn.execute(text(sql)).scalars())


def versioned(url: URL) -> bool:
    return bool(fetch(url, "SELECT to_regclass('alembic_version') IS NOT NULL")[0])


def test_both_tables_present_stamps_017_and_keeps_every_row(legacy_url: URL) -> None:
    run_sql(legacy_url, *ROWS, *UNMANAGED)
    before = fetch(legacy_url, DATA) + fetch(legacy_url, DRY_RUN_DATA)
    result = adopt(legacy_url)
    assert (result.status, result.revision) == ("adopted", "017")
    assert migrate.current(legacy_url) == "017"
    assert fetch(legacy_url, DATA) + fetch(legacy_url, DRY_RUN_DATA) == before
    upgraded = migrate.upgrade(legacy_url, "head")
    assert [a.revision for a in upgraded.applied] == ["018", "019"]
    assert migrate.check(legacy_url) == []
    assert fetch(legacy_url, "SELECT name FROM public.migrations") == ["017_dry_run_log.sql"]
    assert fetch(legacy_url, "SELECT count(*) FROM fibonacci_core.jobs") == [0]
    with connect(legacy_url) as conn:
        [row] = [r for r in audit.entries(conn) if r["action"] == "adopt"]
    assert (row["outcome"], row["to_revision"]) == ("success", "017")


def test_ingestion_only_stamps_the_revision_before_017(legacy_url: URL) -> None:
    run_sql(legacy_url, "DROP TABLE dry_run_log", *ROWS[:3])
    result = adopt(legacy_url)
    assert result.revision == "lead_ingestion"
    upgraded = migrate.upgrade(legacy_url, "head")
    assert [a.revision for a in upgraded.applied] == ["017", "018", "019"]
    assert fetch(legacy_url, "SELECT count(*) FROM leads") == [2]


def test_dry_run_reports_and_changes_nothing(legacy_url: URL) -> None:
    result = adopt(legacy_url, dry_run=True)
    assert (result.status, result.revision) == ("would_adopt", "017")
    assert not versioned(legacy_url)


DRIFTS = [
    ("ALTER TABLE dry_run_log ALTER COLUMN lead_nome TYPE varchar(600)",
     ["column dry_run_log.lead_nome: type is character varying(600), expected character "
      "varying(500)"]),
    ("ALTER TABLE dry_run_log ALTER COLUMN ambiente SET DEFAULT 'prod'",
     ["column dry_run_log.ambiente: default is 'prod'::character varying, expected "
      "'dev'::character varying"]),
    ("DROP INDEX idx_dry_run_canal", ["index dry_run_log.idx_dry_run_canal: missing"]),
    ("ALTER TABLE leads ADD COLUMN score integer",
     ["column leads.score: present (integer), but not expected"]),
    ("CREATE OR REPLACE VIEW v_stats_ingestao AS SELECT origem_arquivo, count(*) AS total_leads, "
     "count(DISTINCT documento) AS leads_com_documento, min(data_ingestao) AS primeira_ingestao, "
     "max(data_ingestao) AS ultima_ingestao, 0::bigint AS status_novo, "
     "0::bigint AS status_em_disparo, 0::bigint AS status_agendado, "
     "0::bigint AS status_contato_efetuado FROM leads GROUP BY origem_arquivo",
     ["view v_stats_ingestao: definition differs from the revision's"]),
    ("ALTER TABLE lead_emails ALTER COLUMN email DROP NOT NULL",
     ["column lead_emails.email: nullable, expected NOT NULL"]),
]


@pytest.mark.parametrize(("change", "expected"), DRIFTS, ids=[
    "column-type", "default", "missing-index", "extra-column", "changed-view", "nullability"])
def test_drift_is_refused_with_every_difference_named(legacy_url: URL, change: str,
                                                      expected: list[str]) -> None:
    run_sql(legacy_url, *ROWS, change)
    before = fetch(legacy_url, DATA)
    with pytest.raises(DriftDetected) as caught:
        adopt(legacy_url)
    assert caught.value.differences == expected
    assert "closest is 017" in str(caught.value)
    assert not versioned(legacy_url)
    assert fetch(legacy_url, "SELECT to_regclass(:t)".replace(":t", f"'{audit.TABLE}'")) == [None]
    assert fetch(legacy_url, DATA) == before
    assert fetch(legacy_url, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'alq_adopt%'") \
        == [0]


def test_several_differences_are_all_listed(legacy_url: URL) -> None:
    run_sql(legacy_url, DRIFTS[0][0], DRIFTS[2][0], DRIFTS[3][0])
    with pytest.raises(DriftDetected) as caught:
        adopt(legacy_url)
    assert sorted(caught.value.differences) == sorted(
        DRIFTS[0][1] + DRIFTS[2][1] + DRIFTS[3][1])


def test_a_reformatted_function_body_is_still_the_same_function(legacy_url: URL) -> None:
    with connect(legacy_url) as conn:
        body = conn.execute(text("SELECT prosrc FROM pg_proc "
                                 "WHERE proname = 'get_leads_para_disparo'")).scalar_one()
        definition = conn.execute(text(
            "SELECT pg_get_functiondef('get_leads_para_disparo(integer, varchar)'::regprocedure)"
        )).scalar_one()
        conn.execute(text(definition.replace(body, "\n" + "  ".join(body.split(" ")) + "\n")
                          .replace(":", r"\:")))
        conn.commit()
        changed = conn.execute(text("SELECT prosrc FROM pg_proc "
                                    "WHERE proname = 'get_leads_para_disparo'")).scalar_one()
    assert changed != body
    assert adopt(legacy_url).revision == "017"


def test_empty_and_already_managed_databases(empty_url: URL, head_url: URL) -> None:
    empty = adopt(empty_url)
    assert empty.status == "empty"
    assert "run `upgrade`" in empty.message
    assert not versioned(empty_url)
    managed = adopt(head_url)
    assert (managed.status, managed.revision) == ("already_managed", "019")


def test_cli_shows_a_refused_adoption(legacy_url: URL) -> None:
    run_sql(legacy_url, DRIFTS[0][0], DRIFTS[2][0])
    result = CliRunner().invoke(main, ["adopt", "--url",
                                       legacy_url.render_as_string(hide_password=False)])
    print(result.output)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: cannot adopt: the schema matches no revision exactly; closest is 017, with 2 "
        "difference(s). Nothing was changed:",
        "  - column dry_run_log.lead_nome: type is character varying(600), expected "
        "character varying(500)",
        "  - index dry_run_log.idx_dry_run_canal: missing",
    ]


def test_cli_dry_run_then_adopt(legacy_url: URL) -> None:
    url = legacy_url.render_as_string(hide_password=False)
    dry = CliRunner().invoke(main, ["adopt", "--dry-run", "--url", url])
    assert dry.stdout.strip() == "the schema matches revision 017 exactly; would stamp it"
    done = CliRunner().invoke(main, ["adopt", "--url", url])
    assert done.stdout.strip() == "the schema matches revision 017 exactly; stamped it"
    again = CliRunner().invoke(main, ["adopt", "--url", url])
    assert "already managed (at 017)" in again.stdout


def test_adopt_needs_only_the_migration_roles_privileges(invoke: Invoke, migrator_url: URL,
                                                          make_secret: Any,
                                                          pg_server: URL) -> None:
    """A non-superuser owning its database adopts through the Lambda: DRIFT, then success."""
    # Build the legacy schema as the migration role itself, as the old runner did.
    from pathlib import Path

    legacy = Path(__file__).parent / "legacy"
    with connect(migrator_url) as conn:
        for name in ("ingestion.sql", "017_dry_run_log.sql"):
            conn.exec_driver_sql((legacy / name).read_text().replace("%", "%%"))
        conn.commit()
    with connect(migrator_url) as conn:
        assert conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))\
            .scalar() is False
    arn = make_secret(secret_for(migrator_url))
    run_sql(migrator_url, DRIFTS[2][0])
    refused = invoke({"action": "adopt"}, secret=arn)
    assert refused["error_code"] == "DRIFT"
    assert refused["differences"] == ["index dry_run_log.idx_dry_run_canal: missing"]
    assert not versioned(migrator_url)
    run_sql(migrator_url, "CREATE INDEX idx_dry_run_canal ON dry_run_log (canal_decidido)")
    dry = invoke({"action": "adopt", "dry_run": True})
    assert (dry["status"], dry["adoption"], dry["to_revision"]) == ("noop", "would_adopt", "017")
    done = invoke({"action": "adopt"})
    assert (done["status"], done["to_revision"]) == ("success", "017")
    assert invoke({})["applied"][0]["revision"] == "018"
