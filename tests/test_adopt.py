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
from alquimista_schema.errors import DriftDetected, NotAdopted
from tests.helpers import Invoke, secret_for

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
    "CREATE SCHEMA alquimista_platform",
    "CREATE TABLE alquimista_platform.tenants (id uuid PRIMARY KEY, nome text, "
    "updated_at timestamp)",
    "CREATE TRIGGER t_tenants BEFORE UPDATE ON alquimista_platform.tenants "
    "FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    "INSERT INTO alquimista_platform.tenants VALUES (gen_random_uuid(), 'Tenant A', NULL)",
    "CREATE SCHEMA nigredo_leads",
    "CREATE TABLE nigredo_leads.leads (id serial PRIMARY KEY, email text)",
    "INSERT INTO nigredo_leads.leads (email) VALUES ('x@y.com')",
    "CREATE SCHEMA fibonacci_core",
    "CREATE TABLE fibonacci_core.jobs (id serial PRIMARY KEY, updated_at timestamp)",
    "CREATE TRIGGER t_jobs BEFORE UPDATE ON fibonacci_core.jobs "
    "FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    "CREATE TABLE public.migrations (id serial PRIMARY KEY, name text)",
    "INSERT INTO public.migrations (name) VALUES ('017_dry_run_log.sql')",
    "CREATE VIEW public.v_platform AS SELECT 1 AS one",
    "COMMENT ON VIEW public.v_platform IS 'the platform''s'",
]
UNMANAGED_SNAPSHOT = """
    SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text
           || ':' || coalesce(obj_description(c.oid, 'pg_class'), '')
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname IN ('alquimista_platform', 'nigredo_leads', 'fibonacci_core')
        OR c.relname IN ('migrations', 'v_platform')
    UNION ALL SELECT 'fn:' || pg_get_functiondef('update_updated_at_column()'::regprocedure)
    UNION ALL SELECT 'trigger:' || tgname FROM pg_trigger WHERE tgname IN ('t_tenants', 't_jobs')
    UNION ALL SELECT 'ext:' || extname || extversion FROM pg_extension
    UNION ALL SELECT 'row:' || name FROM public.migrations
    UNION ALL SELECT 'row:' || nome FROM alquimista_platform.tenants
    UNION ALL SELECT 'row:' || email FROM nigredo_leads.leads
     ORDER BY 1
"""


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


def unmanaged(url: URL) -> list[Any]:
    """The objects and rows the package does not own, as they stand."""
    return fetch(url, UNMANAGED_SNAPSHOT)


def test_legacy_database_is_adopted_upgraded_and_clean(legacy_url: URL) -> None:
    """The issue's scenario: legacy-built, with rows and the platform's schemas beside it."""
    run_sql(legacy_url, *ROWS, *UNMANAGED)
    before = fetch(legacy_url, DATA) + fetch(legacy_url, DRY_RUN_DATA)
    others = unmanaged(legacy_url)
    result = adopt(legacy_url)
    assert (result.status, result.revision) == ("adopted", "017")
    assert migrate.current(legacy_url) == "017"
    assert fetch(legacy_url, DATA) + fetch(legacy_url, DRY_RUN_DATA) == before
    upgraded = migrate.upgrade(legacy_url, "head")
    assert [a.revision for a in upgraded.applied] == ["018", "019", "020", "021"]
    migrate.check(legacy_url)  # raises DriftDetected on any difference
    assert fetch(legacy_url, DATA) + fetch(legacy_url, DRY_RUN_DATA) == before
    # both leads share one ingestion time: compare them as a set
    assert sorted(fetch(legacy_url, "SELECT nome || '/' || coalesce(email, '-') || '/' "
                                    "|| tipo_contato FROM get_leads_para_disparo()")) == [
        "Ana/ana@x.com/ambos", "Bruno/-/telefone"]
    assert fetch(legacy_url, "SELECT leads_novos FROM v_stats_ingestao") == [2]
    migrate.downgrade(legacy_url, "017")
    migrate.upgrade(legacy_url, "head")
    assert unmanaged(legacy_url) == others
    migrate.check(legacy_url)  # raises DriftDetected on any difference
    with connect(legacy_url) as conn:
        [row] = [r for r in audit.entries(conn) if r["action"] == "adopt"]
    assert (row["outcome"], row["to_revision"]) == ("success", "017")


def test_ingestion_only_stamps_the_revision_before_017(legacy_url: URL) -> None:
    run_sql(legacy_url, "DROP TABLE dry_run_log", *ROWS[:3])
    result = adopt(legacy_url)
    assert result.revision == "lead_ingestion"
    upgraded = migrate.upgrade(legacy_url, "head")
    assert [a.revision for a in upgraded.applied] == ["017", "018", "019", "020", "021"]
    assert fetch(legacy_url, "SELECT count(*) FROM leads") == [2]


def test_dry_run_reports_and_changes_nothing(legacy_url: URL) -> None:
    result = adopt(legacy_url, dry_run=True)
    assert (result.status, result.revision) == ("would_adopt", "017")
    assert not versioned(legacy_url)


# The old test stand-in's objects (written from short descriptions): what adoption must
# refuse, naming what differs.
STAND_IN_FUNCTION = """
DROP FUNCTION get_leads_para_disparo(integer, character varying);
CREATE FUNCTION get_leads_para_disparo(p_limit integer DEFAULT 100,
                                       p_status character varying DEFAULT 'novo')
RETURNS TABLE (lead_id uuid, nome character varying, email character varying,
               telefone character varying, tipo_contato text)
LANGUAGE sql STABLE AS $function$
    SELECT l.lead_id, l.nome, e.email, t.telefone,
           CASE WHEN e.email IS NOT NULL THEN 'email' ELSE 'telefone' END
      FROM leads l
      LEFT JOIN LATERAL (SELECT le.email FROM lead_emails le WHERE le.lead_id = l.lead_id
                         ORDER BY le.created_at LIMIT 1) e ON true
      LEFT JOIN LATERAL (SELECT lt.telefone FROM lead_telefones lt WHERE lt.lead_id = l.lead_id
                         ORDER BY lt.created_at LIMIT 1) t ON true
     WHERE l.status = p_status LIMIT p_limit
$function$
"""
FN = "function get_leads_para_disparo(integer, character varying)"
V = "character varying"

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
    # the old stand-in's view: four columns renamed (dashboards read the legacy names)
    ("DROP VIEW v_stats_ingestao; CREATE VIEW v_stats_ingestao AS SELECT origem_arquivo, "
     "count(*) AS total_leads, count(DISTINCT documento) AS leads_com_documento, "
     "min(data_ingestao) AS primeira_ingestao, max(data_ingestao) AS ultima_ingestao, "
     "count(*) FILTER (WHERE status = 'novo') AS status_novo, "
     "count(*) FILTER (WHERE status = 'em_disparo') AS status_em_disparo, "
     "count(*) FILTER (WHERE status = 'agendado') AS status_agendado, "
     "count(*) FILTER (WHERE status = 'contato_efetuado') AS status_contato_efetuado "
     "FROM leads GROUP BY origem_arquivo ORDER BY max(data_ingestao) DESC; "
     "COMMENT ON VIEW v_stats_ingestao IS 'Estatísticas de ingestão por arquivo'",
     ["view v_stats_ingestao: column 6 is status_novo bigint, expected leads_novos bigint"]),
    # same names and types, another expression: the first one that differs is named
    ("CREATE OR REPLACE VIEW v_stats_ingestao AS SELECT origem_arquivo, "
     "count(*) AS total_leads, count(DISTINCT documento) AS leads_com_documento, "
     "min(data_ingestao) AS primeira_ingestao, max(data_ingestao) AS ultima_ingestao, "
     "count(*) FILTER (WHERE status = 'novo') AS leads_novos, "
     "count(*) FILTER (WHERE status = 'em_disparo') AS leads_em_disparo, "
     "count(*) FILTER (WHERE status = 'agendado') AS leads_agendados, "
     "count(*) FILTER (WHERE status = 'contato_efetuado') AS leads_contatados "
     "FROM leads GROUP BY origem_arquivo ORDER BY ultima_ingestao DESC",
     ["view v_stats_ingestao: column 3 (leads_com_documento) is computed as "
      "count(DISTINCT leads.documento) AS leads_com_documento, expected "
      "count(DISTINCT leads.documento) FILTER (WHERE (leads.documento IS NOT NULL)) AS "
      "leads_com_documento"]),
    (STAND_IN_FUNCTION,
     [f"{FN}: language is sql, expected plpgsql",
      f"{FN}: volatility is stable, expected volatile",
      f"{FN}: result type is TABLE(lead_id uuid, nome {V}, email {V}, telefone {V}, "
      f"tipo_contato text), expected TABLE(lead_id uuid, nome {V}, email {V}, telefone {V}, "
      f"tipo_contato {V})",
      f"{FN}: body differs from the revision's (beyond whitespace)",
      f"comment on {FN}: is none, expected 'Busca leads prontos para disparo com contatos "
      "válidos'"]),
    ("ALTER FUNCTION get_leads_para_disparo(integer, varchar) SECURITY DEFINER",
     [f"{FN}: its attributes differ (pg_get_functiondef): is CREATE OR REPLACE FUNCTION "
      f"public.get_leads_para_disparo(p_limit integer DEFAULT 100, p_status {V} DEFAULT "
      f"'novo'::{V}) RETURNS TABLE(lead_id uuid, nome {V}, email {V}, telefone {V}, "
      f"tipo_contato {V}) LANGUAGE plpgsql SECURITY DEFINER AS $function$ BEGIN RETURN QUERY "
      "SELECT l.lead_id, l.nome, e.email, t.telefone, CASE WHEN e.email IS NOT NULL AND "
      "t.telefone IS NOT NULL THEN 'ambos' WHEN e.email IS NOT NULL THEN 'email' WHEN "
      "t.telefone IS NOT NULL THEN 'telefone' ELSE 'nenhum' END AS tipo_contato FROM leads l "
      "LEFT JOIN lead_emails e ON e.lead_id = l.lead_id AND e.email_principal = TRUE AND "
      "e.valido_para_disparo = TRUE LEFT JOIN lead_telefones t ON t.lead_id = l.lead_id AND "
      "t.telefone_principal = TRUE AND t.valido_para_disparo = TRUE WHERE l.status = p_status "
      "AND (e.email IS NOT NULL OR t.telefone IS NOT NULL) ORDER BY l.data_ingestao ASC LIMIT "
      "p_limit; END; $function$"]),
    ("COMMENT ON COLUMN leads.status IS NULL",
     ["comment on column leads.status: is none, expected 'Status do lead: novo, em_disparo, "
      "agendado, contato_efetuado, sem_sucesso, descartado'"]),
    ("COMMENT ON TABLE dry_run_log IS 'audit'",
     ["comment on table dry_run_log: is 'audit', expected 'Log de auditoria para testes "
      "dry-run do Micro Agente de Disparos & Agendamentos'"]),
    ("ALTER TABLE leads DROP CONSTRAINT leads_lead_id_externo_key",
     ["constraint leads.leads_lead_id_externo_key: missing"]),
    ("ALTER TABLE lead_emails ALTER COLUMN email DROP NOT NULL",
     ["column lead_emails.email: nullable, expected NOT NULL"]),
]


@pytest.mark.parametrize(("change", "expected"), DRIFTS, ids=[
    "column-type", "default", "missing-index", "extra-column", "renamed-view-column",
    "view-expression", "stand-in-function", "security-definer", "column-comment",
    "table-comment",
    "unique-once", "nullability"])
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
    assert (managed.status, managed.revision) == ("already_managed", "021")


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


# --- upgrading a legacy-built database without adopting it ---------------------------

NO_TRACE = """
    SELECT (SELECT count(*) FROM pg_class WHERE relname IN ('alembic_version', :audit))
           || '/' || (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory')
"""


def no_trace(url: URL) -> str:
    with connect(url) as conn:
        return str(conn.execute(text(NO_TRACE), {"audit": audit.TABLE}).scalar())


def test_upgrade_refuses_an_unadopted_database_and_changes_nothing(legacy_url: URL) -> None:
    run_sql(legacy_url, *ROWS)
    before = fetch(legacy_url, DATA)
    with pytest.raises(NotAdopted, match=r"Run `alquimista-schema adopt` \(the Lambda: "
                                         r'\{"action": "adopt"\}\)') as caught:
        migrate.upgrade(legacy_url, "head")
    assert caught.value.code == "NOT_ADOPTED"
    assert no_trace(legacy_url) == "0/0"
    assert fetch(legacy_url, DATA) == before
    assert adopt(legacy_url).revision == "017"  # and the way out works


def test_cli_upgrade_says_to_adopt(legacy_url: URL) -> None:
    result = CliRunner().invoke(main, ["upgrade", "head", "--url",
                                       legacy_url.render_as_string(hide_password=False)])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: the database holds the package's objects (dry_run_log, "
                           "lead_emails, lead_telefones, leads, ...) but no alembic_version")
    assert "alquimista-schema adopt" in line
    assert no_trace(legacy_url) == "0/0"


def test_lambda_upgrade_answers_not_adopted(invoke: Invoke, legacy_url: URL,
                                            make_secret: Any) -> None:
    for event in ({}, {"action": "run-migration", "target": "all"}):
        answer = invoke(event, secret=make_secret(secret_for(legacy_url)))
        assert (answer["status"], answer["error_code"]) == ("error", "NOT_ADOPTED")
        assert '{"action": "adopt"}' in answer["error"]
        assert answer["applied"] == []
    assert no_trace(legacy_url) == "0/0"


def test_plain_alembic_upgrade_says_to_adopt(legacy_url: URL) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DATABASE_URL": legacy_url.render_as_string(hide_password=False)}
    done = subprocess.run([sys.executable, "-c", "from alembic.config import main; main()",
                           "upgrade", "head"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    assert "FAILED: the database holds the package's objects" in done.stdout
    assert "already exists" not in done.stdout + done.stderr
    assert no_trace(legacy_url) == "0/0"
