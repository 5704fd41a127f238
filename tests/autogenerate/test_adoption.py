"""Adopting databases the legacy SQL files built: verify exactly, stamp, or change nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.cli import main
from alquimista_schema.command import adopt
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import DriftDetected, NotAdopted
from alquimista_schema.runtime import audit
from tests.support.helpers import Invoke, alembic, secret_for
from tests.support.revisions import HEAD, after

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
    assert command.current(legacy_url) == "017"
    assert fetch(legacy_url, DATA) + fetch(legacy_url, DRY_RUN_DATA) == before
    upgraded = command.upgrade(legacy_url, "head")
    assert [a.revision for a in upgraded.applied] == after("017")
    command.check(legacy_url)  # raises DriftDetected on any difference
    assert fetch(legacy_url, DATA) + fetch(legacy_url, DRY_RUN_DATA) == before
    # both leads share one ingestion time: compare them as a set
    assert sorted(fetch(legacy_url, "SELECT nome || '/' || coalesce(email, '-') || '/' "
                                    "|| tipo_contato FROM get_leads_para_disparo()")) == [
        "Ana/ana@x.com/ambos", "Bruno/-/telefone"]
    assert fetch(legacy_url, "SELECT leads_novos FROM v_stats_ingestao") == [2]
    command.downgrade(legacy_url, "017")
    command.upgrade(legacy_url, "head")
    assert unmanaged(legacy_url) == others
    command.check(legacy_url)  # raises DriftDetected on any difference
    with connect(legacy_url) as conn:
        [row] = [r for r in audit.entries(conn) if r["action"] == "adopt"]
    assert (row["outcome"], row["to_revision"]) == ("success", "017")


def test_ingestion_only_stamps_the_revision_before_017(legacy_url: URL) -> None:
    run_sql(legacy_url, "DROP TABLE dry_run_log", *ROWS[:3])
    result = adopt(legacy_url)
    assert result.revision == "lead_ingestion"
    upgraded = command.upgrade(legacy_url, "head")
    assert [a.revision for a in upgraded.applied] == after("lead_ingestion")
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
      f"{FN}: body differs at line 2, column 5: SELECT where the revision has BEGIN",
      f"comment on {FN}: is none, expected 'Busca leads prontos para disparo com contatos "
      "válidos'"]),
    ("ALTER FUNCTION get_leads_para_disparo(integer, varchar) SECURITY DEFINER",
     [f"{FN}: its attributes differ (pg_get_functiondef): is CREATE OR REPLACE FUNCTION "
      f"public.get_leads_para_disparo(p_limit integer DEFAULT 100, p_status {V} DEFAULT "
      f"'novo'::{V}) RETURNS TABLE(lead_id uuid, nome {V}, email {V}, telefone {V}, "
      f"tipo_contato {V}) LANGUAGE plpgsql SECURITY DEFINER AS $function$$function$"]),
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
    # a partial index is another index: its WHERE changed, dropped, or added
    ("DROP INDEX idx_leads_documento; CREATE INDEX idx_leads_documento ON leads (documento) "
     "WHERE documento IS NOT NULL AND documento <> ''",
     ["index leads.idx_leads_documento: is CREATE INDEX idx_leads_documento ON public.leads "
      "USING btree (documento) WHERE ((documento IS NOT NULL) AND ((documento)::text <> "
      "''::text)); expected CREATE INDEX idx_leads_documento ON public.leads USING btree "
      "(documento) WHERE (documento IS NOT NULL)"]),
    ("DROP INDEX idx_leads_documento; CREATE INDEX idx_leads_documento ON leads (documento)",
     ["index leads.idx_leads_documento: is CREATE INDEX idx_leads_documento ON public.leads "
      "USING btree (documento); expected CREATE INDEX idx_leads_documento ON public.leads "
      "USING btree (documento) WHERE (documento IS NOT NULL)"]),
    ("DROP INDEX idx_leads_status; CREATE INDEX idx_leads_status ON leads (status) "
     "WHERE status <> 'descartado'",
     ["index leads.idx_leads_status: is CREATE INDEX idx_leads_status ON public.leads USING "
      "btree (status) WHERE ((status)::text <> 'descartado'::text); expected CREATE INDEX "
      "idx_leads_status ON public.leads USING btree (status)"]),
]


@pytest.mark.parametrize(("change", "expected"), DRIFTS, ids=[
    "column-type", "default", "missing-index", "extra-column", "renamed-view-column",
    "view-expression", "stand-in-function", "security-definer", "column-comment",
    "table-comment",
    "unique-once", "nullability", "index-where-changed", "index-where-dropped",
    "index-where-added"])
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


FUNCTION_BODY = "SELECT prosrc FROM pg_proc WHERE proname = 'get_leads_para_disparo'"
FUNCTION_DEF = ("SELECT pg_get_functiondef('get_leads_para_disparo(integer, varchar)'"
                "::regprocedure)")


def retype_function(url: URL, edit: Callable[[str], str]) -> str:
    """Re-create get_leads_para_disparo with its body edited; return the new body."""
    with connect(url) as conn:
        body = conn.execute(text(FUNCTION_BODY)).scalar_one()
        definition = conn.execute(text(FUNCTION_DEF)).scalar_one()
        edited = edit(body)
        assert edited != body
        conn.exec_driver_sql(definition.replace(body, edited).replace("%", "%%"))
        conn.commit()
        assert conn.execute(text(FUNCTION_BODY)).scalar_one() == edited
    return str(edited)


def _keyword_case(body: str) -> str:
    for word in ("BEGIN", "RETURN QUERY", "SELECT", "CASE", "WHEN", "IS NOT NULL", "THEN",
                 "ELSE", "FROM", "LEFT JOIN", "ON", "AND", "TRUE", "WHERE", "ORDER BY", "ASC",
                 "LIMIT", "END"):
        body = body.replace(word, word.lower())
    return body.replace("END as", "end AS").replace("end as", "END AS")


def _indentation(body: str) -> str:
    return "\n".join("\t" + line.strip() for line in body.splitlines()) + "\n\n"


def _comments(body: str) -> str:
    return (body.replace("BEGIN\n", "BEGIN -- legacy copy of the ingestion script\n")
                .replace("FROM leads l", "FROM leads l /* every lead */"))


COSMETIC = {"keyword case": _keyword_case, "indentation": _indentation,
            "comments": _comments,
            "all three": lambda b: _comments(_indentation(_keyword_case(b)))}


@pytest.mark.parametrize("edit", COSMETIC.values(), ids=list(COSMETIC))
def test_a_cosmetically_edited_function_is_the_same_function(legacy_url: URL,
                                                              edit: Callable[[str], str]
                                                              ) -> None:
    retype_function(legacy_url, edit)
    assert adopt(legacy_url).revision == "017"


# (edit, the line adopt must print): what PostgreSQL would run differently is refused.
REFUSED_BODIES = {
    "string literal": (lambda b: b.replace("'ambos'", "'both'"),
                       f"{FN}: body differs at line 10, column 70: 'both' where the revision "
                       "has 'ambos'"),
    "literal case": (lambda b: b.replace("'email'", "'EMAIL'"),
                     f"{FN}: body differs at line 11, column 43: 'EMAIL' where the revision "
                     "has 'email'"),
    "quoted identifier": (lambda b: b.replace("l.nome,", 'l."Nome",'),
                          f'{FN}: body differs at line 6, column 11: "Nome" where the '
                          "revision has nome"),
    "a number added": (lambda b: b.replace("LIMIT p_limit;", "LIMIT p_limit + 1;"),
                       f"{FN}: body differs at line 21, column 19: + where the revision has ;"),
    "a statement added": (lambda b: b.replace("p_limit;\nEND;", "p_limit;\n    RETURN;\nEND;"),
                          f"{FN}: body differs at line 22, column 5: RETURN where the "
                          "revision has END"),
}


@pytest.mark.parametrize(("edit", "line"), REFUSED_BODIES.values(), ids=list(REFUSED_BODIES))
def test_a_function_that_would_run_differently_is_refused(legacy_url: URL,
                                                          edit: Callable[[str], str],
                                                          line: str) -> None:
    retype_function(legacy_url, edit)
    with pytest.raises(DriftDetected) as caught:
        adopt(legacy_url)
    assert caught.value.differences == [line]
    assert not versioned(legacy_url)


def test_each_difference_is_named_body_index_and_type(legacy_url: URL) -> None:
    retype_function(legacy_url, lambda b: _keyword_case(b).replace("'ambos'", "'both'"))
    run_sql(legacy_url, DRIFTS[0][0], DRIFTS[2][0])
    with pytest.raises(DriftDetected) as caught:
        adopt(legacy_url)
    assert sorted(caught.value.differences) == sorted([
        *DRIFTS[0][1], *DRIFTS[2][1],
        f"{FN}: body differs at line 10, column 70: 'both' where the revision has 'ambos'"])
    assert not versioned(legacy_url)
    assert fetch(legacy_url, f"SELECT to_regclass('{audit.TABLE}')") == [None]


@pytest.mark.parametrize("door", ["cli", "lambda"])
def test_a_cosmetic_copy_is_adopted_upgraded_and_clean(door: str, legacy_url: URL,
                                                       invoke: Invoke,
                                                       make_secret: Any) -> None:
    """The issue's second scenario, end to end through each door that adopts."""
    run_sql(legacy_url, *ROWS, *UNMANAGED)
    retype_function(legacy_url, COSMETIC["all three"])
    before = fetch(legacy_url, DATA) + fetch(legacy_url, DRY_RUN_DATA)
    if door == "cli":
        url = legacy_url.render_as_string(hide_password=False)
        adopted = CliRunner().invoke(main, ["adopt", "--url", url])
        assert adopted.stdout.strip() == "the schema matches revision 017 exactly; stamped it"
        assert CliRunner().invoke(main, ["upgrade", "--url", url]).exit_code == 0
        assert CliRunner().invoke(main, ["check", "--url", url]).exit_code == 0
    else:
        arn = make_secret(secret_for(legacy_url))
        answer = invoke({"action": "adopt"}, secret=arn)
        assert (answer["status"], answer["to_revision"]) == ("success", "017")
        assert invoke({})["to_revision"] == HEAD
        drift = invoke({"action": "drift"})
        assert (drift["status"], drift["drift"]) == ("success", False)
    assert fetch(legacy_url, DATA) + fetch(legacy_url, DRY_RUN_DATA) == before
    assert sorted(fetch(legacy_url, "SELECT nome || '/' || tipo_contato "
                                    "FROM get_leads_para_disparo()")) == [
        "Ana/ambos", "Bruno/telefone"]


def test_empty_and_already_managed_databases(empty_url: URL, head_url: URL) -> None:
    empty = adopt(empty_url)
    assert empty.status == "empty"
    assert "run `upgrade`" in empty.message
    assert not versioned(empty_url)
    managed = adopt(head_url)
    assert (managed.status, managed.revision) == ("already_managed", HEAD)


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


PARTIAL_INDEX_DRIFTS = [case for case in DRIFTS if "CREATE INDEX" in case[0]]
assert len(PARTIAL_INDEX_DRIFTS) == 3


@pytest.mark.parametrize("door", ["cli", "lambda"])
@pytest.mark.parametrize(("change", "expected"), PARTIAL_INDEX_DRIFTS,
                         ids=["where-changed", "where-dropped", "where-added"])
def test_an_index_whose_where_differs_is_never_adopted(
        door: str, change: str, expected: list[str], legacy_url: URL, invoke: Invoke,
        make_secret: Any) -> None:
    """Through each door that adopts: a partial index is not its full twin, nor another
    partial one; the predicate is named, and nothing is stamped."""
    run_sql(legacy_url, change)
    if door == "cli":
        result = CliRunner().invoke(main, ["adopt", "--url",
                                           legacy_url.render_as_string(hide_password=False)])
        assert result.exit_code == 1, result.output
        assert result.stderr.splitlines()[1:] == [f"  - {line}" for line in expected]
    else:
        answer = invoke({"action": "adopt"}, secret=make_secret(secret_for(legacy_url)))
        assert (answer["status"], answer.get("error_code")) == ("error", "DRIFT"), answer
        assert answer["differences"] == expected
    assert not versioned(legacy_url)


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

    legacy = Path(__file__).parents[1] / "legacy"
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
        command.upgrade(legacy_url, "head")
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

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DATABASE_URL": legacy_url.render_as_string(hide_password=False)}
    done = subprocess.run([sys.executable, "-c", "from alembic.config import main; main()",
                           "upgrade", "head"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    assert "FAILED: the database holds the package's objects" in done.stdout
    assert "already exists" not in done.stdout + done.stderr
    assert no_trace(legacy_url) == "0/0"


# --- check and drift compare functions the way adoption does ---------------------------


def _check(door: str, url: URL, invoke: Invoke, make_secret: Any) -> list[str]:
    """Run check (drift, for the Lambda) through ``door``; return the differences."""
    if door == "cli":
        result = CliRunner().invoke(main, ["check", "--url",
                                           url.render_as_string(hide_password=False)])
        return [line.removeprefix("  - ") for line in result.stderr.splitlines()[1:]]
    if door == "lambda":
        answer = invoke({"action": "drift"}, secret=make_secret(secret_for(url)))
        assert answer["status"] == "success", answer
        return list(answer["differences"])
    done = alembic("check", url=url)
    if done.returncode == 0:
        assert "No new upgrade operations detected." in done.stdout
        return []
    return [done.stdout + done.stderr]


@pytest.mark.parametrize("door", ["cli", "lambda", "alembic"])
def test_check_forgives_a_cosmetic_body_and_names_a_real_change(door: str, head_url: URL,
                                                                invoke: Invoke,
                                                                make_secret: Any) -> None:
    retype_function(head_url, lambda b: _comments(_indentation(_keyword_case(b))))
    assert _check(door, head_url, invoke, make_secret) == []
    retype_function(head_url, lambda b: b.replace("'ambos'", "'both'"))
    [difference] = _check(door, head_url, invoke, make_secret)
    assert "get_leads_para_disparo" in difference
