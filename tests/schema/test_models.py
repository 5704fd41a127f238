"""At 017 the schema is the legacy one: docs/CONTEXT.md's exact facts, equal to the legacy files.

Every expectation here is transcribed from docs/CONTEXT.md ("The live objects, exactly"),
not from the revisions, so a revision that drifts from the live databases fails here.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from alquimista_schema import command
from alquimista_schema.connect.database import connect
from alquimista_schema.schema import introspect

V = "character varying"
TS = "timestamp without time zone"
# (name, type, nullable, default) in column order, transcribed from docs/CONTEXT.md.
COLUMNS: dict[str, list[tuple[str, str, bool, str | None]]] = {
    "dry_run_log": [
        ("log_id", "uuid", False, "gen_random_uuid()"),
        ("tenant_id", "uuid", False, None),
        ("lead_id", "uuid", True, None),
        ("lead_nome", f"{V}(500)", True, None),
        ("lead_telefone", f"{V}(50)", True, None),
        ("lead_email", f"{V}(255)", True, None),
        ("lead_documento", f"{V}(20)", True, None),
        ("canal_decidido", f"{V}(20)", False, None),
        ("motivo_decisao", "text", False, None),
        ("template_selecionado", f"{V}(100)", True, None),
        ("disparo_seria_executado", "boolean", True, "true"),
        ("razao_bloqueio", "text", True, None),
        ("ambiente", f"{V}(10)", True, f"'dev'::{V}"),
        ("feature_flag_enabled", "boolean", True, "false"),
        ("created_at", TS, True, "now()"),
    ],
    "leads": [
        ("lead_id", "uuid", False, "gen_random_uuid()"),
        ("lead_id_externo", f"{V}(255)", False, None),
        ("origem_arquivo", f"{V}(255)", False, None),
        ("origem_aba", f"{V}(100)", False, None),
        ("nome", f"{V}(255)", True, None),
        ("contato_nome", f"{V}(255)", True, None),
        ("documento", f"{V}(20)", True, None),
        ("email_raw", "text", True, None),
        ("telefone_raw", "text", True, None),
        ("status", f"{V}(50)", True, f"'novo'::{V}"),
        ("tags", "jsonb", True, "'[]'::jsonb"),
        ("data_ingestao", TS, True, "now()"),
        ("created_at", TS, True, "now()"),
        ("updated_at", TS, True, "now()"),
    ],
    "lead_telefones": [
        ("telefone_id", "uuid", False, "gen_random_uuid()"),
        ("lead_id", "uuid", False, None),
        ("telefone", f"{V}(50)", False, None),
        ("telefone_principal", "boolean", True, "false"),
        ("tipo_origem", f"{V}(50)", True, f"'nao_classificado'::{V}"),
        ("valido_para_disparo", "boolean", True, "true"),
        ("created_at", TS, True, "now()"),
    ],
    "lead_emails": [
        ("email_id", "uuid", False, "gen_random_uuid()"),
        ("lead_id", "uuid", False, None),
        ("email", f"{V}(255)", False, None),
        ("email_principal", "boolean", True, "false"),
        ("valido_para_disparo", "boolean", True, "true"),
        ("created_at", TS, True, "now()"),
    ],
}

# index name -> definition after "ON public.<table> USING btree " (constraint-backed
# indexes are the constraints': see test_keys_and_unique_constraints).
INDEXES: dict[str, dict[str, str]] = {
    "dry_run_log": {
        "idx_dry_run_tenant": "(tenant_id, created_at DESC)",
        "idx_dry_run_canal": "(canal_decidido)",
        "idx_dry_run_ambiente": "(ambiente, created_at DESC)",
    },
    "leads": {
        "idx_leads_status": "(status)",
        "idx_leads_externo": "(lead_id_externo)",
        "idx_leads_origem": "(origem_arquivo, origem_aba)",
        "idx_leads_data_ingestao": "(data_ingestao DESC)",
        "idx_leads_documento": "(documento) WHERE (documento IS NOT NULL)",
    },
    "lead_telefones": {
        "idx_lead_telefones_lead": "(lead_id)",
        "idx_lead_telefones_valido": "(valido_para_disparo)",
        "idx_lead_telefones_principal": "(lead_id, telefone_principal)",
        "idx_lead_telefones_tipo": "(tipo_origem)",
    },
    "lead_emails": {
        "idx_lead_emails_lead": "(lead_id)",
        "idx_lead_emails_valido": "(valido_para_disparo)",
        "idx_lead_emails_principal": "(lead_id, email_principal)",
        "idx_lead_emails_email": "(email)",
    },
}

# Every comment the live databases carry, word for word (docs/CONTEXT.md). Nothing else in
# public has one: update_updated_at_column() has none.
COMMENTS: dict[str, str] = {
    "table leads": "Tabela principal de leads importados de planilhas",
    "column leads.lead_id": "ID interno único do lead",
    "column leads.lead_id_externo": "ID externo para rastreabilidade (arquivo:linha)",
    "column leads.origem_arquivo": "Nome do arquivo de origem",
    "column leads.origem_aba": "Nome da aba da planilha",
    "column leads.email_raw": "String bruta de emails (pode conter múltiplos separados por |)",
    "column leads.telefone_raw":
        "String bruta de telefones (pode conter múltiplos separados por |)",
    "column leads.status": "Status do lead: novo, em_disparo, agendado, contato_efetuado, "
                           "sem_sucesso, descartado",
    "column leads.tags": "Tags adicionais em formato JSON array",
    "table lead_telefones": "Telefones explodidos de cada lead",
    "column lead_telefones.telefone_principal":
        "Indica se é o telefone principal (primeiro da lista)",
    "column lead_telefones.tipo_origem":
        "Tipo: movel, fixo, internacional, desconhecido, nao_classificado",
    "column lead_telefones.valido_para_disparo": "Se passou nas validações de formato e DDD",
    "table lead_emails": "Emails explodidos de cada lead",
    "column lead_emails.email_principal": "Indica se é o email principal (primeiro da lista)",
    "column lead_emails.valido_para_disparo": "Se passou nas validações de formato e sintaxe",
    "table dry_run_log": "Log de auditoria para testes dry-run do Micro Agente de Disparos & "
                         "Agendamentos",
    "column dry_run_log.canal_decidido":
        "Canal escolhido pela lógica de decisão (whatsapp, email, calendar, none)",
    "column dry_run_log.motivo_decisao": "Explicação de por que este canal foi escolhido",
    "column dry_run_log.disparo_seria_executado":
        "Se true, o disparo seria executado em modo real (sem bloqueios)",
    "column dry_run_log.razao_bloqueio": "Motivo pelo qual o disparo não seria executado (ex: "
                                         "rate limit, horário não comercial)",
    "column dry_run_log.feature_flag_enabled":
        "Valor da feature flag MICRO_AGENT_DISPARO_ENABLED no momento do teste",
    "view v_leads_com_contatos": "View de leads com seus contatos principais agregados",
    "view v_stats_ingestao": "Estatísticas de ingestão por arquivo",
    "function get_leads_para_disparo(integer,character varying)":
        "Busca leads prontos para disparo com contatos válidos",
}

ALL_COMMENTS = """
    SELECT CASE c.relkind WHEN 'v' THEN 'view ' ELSE 'table ' END || c.relname, d.description
      FROM pg_description d
      JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND d.objsubid = 0
    UNION ALL
    SELECT 'column ' || c.relname || '.' || a.attname, d.description
      FROM pg_description d
      JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
      JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
     WHERE n.nspname = 'public' AND d.objsubid > 0
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure::text, d.description
      FROM pg_description d JOIN pg_proc p ON p.oid = d.objoid AND d.classoid = 'pg_proc'::regclass
      JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'public'
"""

# Every view and function in public, in PostgreSQL's canonical text.
DEFINITIONS = """
    SELECT 'view ' || c.relname, pg_get_viewdef(c.oid)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind = 'v'
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure::text, pg_get_functiondef(p.oid)
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      LEFT JOIN pg_depend x ON x.objid = p.oid AND x.deptype = 'e'
     WHERE n.nspname = 'public' AND x.objid IS NULL
"""

# View columns (name and type, in order), as dashboards read them.
VIEW_COLUMNS = {
    "v_leads_com_contatos": [
        "lead_id uuid", f"lead_id_externo {V}(255)", f"nome {V}(255)",
        f"contato_nome {V}(255)", f"documento {V}(20)", f"status {V}(50)", "tags jsonb",
        f"data_ingestao {TS}", f"email_principal {V}(255)", f"telefone_principal {V}(50)",
        "total_emails bigint", "total_telefones bigint"],
    "v_stats_ingestao": [
        f"origem_arquivo {V}(255)", "total_leads bigint", "leads_com_documento bigint",
        f"primeira_ingestao {TS}", f"ultima_ingestao {TS}", "leads_novos bigint",
        "leads_em_disparo bigint", "leads_agendados bigint", "leads_contatados bigint"],
}
LEGACY_FUNCTION = {
    "language": "plpgsql", "volatility": "volatile",
    "arguments": f"p_limit integer DEFAULT 100, p_status {V} DEFAULT 'novo'::{V}",
    "result": f"TABLE(lead_id uuid, nome {V}, email {V}, telefone {V}, tipo_contato {V})",
}


def rows(url: URL, sql: str) -> dict[str, str]:
    with connect(url) as conn:
        return {name: value for name, value in conn.execute(text(sql))}


@pytest.fixture
def at_017(empty_url: URL) -> dict[str, Any]:
    command.upgrade(empty_url, "017")
    with connect(empty_url) as conn:
        return introspect.snapshot(conn)


@pytest.mark.parametrize("table", sorted(COLUMNS))
def test_columns_match_context_md(at_017: dict[str, Any], table: str) -> None:
    got = [(c["name"], c["type"], c["nullable"], c["default"])
           for c in at_017["tables"][table]["columns"]]
    assert got == COLUMNS[table]


@pytest.mark.parametrize("table", sorted(INDEXES))
def test_indexes_match_context_md(at_017: dict[str, Any], table: str) -> None:
    expected = {name: f"CREATE INDEX {name} ON public.{table} USING btree {cols}"
                for name, cols in INDEXES[table].items()}
    assert at_017["tables"][table]["indexes"] == expected


def test_keys_and_unique_constraints(at_017: dict[str, Any]) -> None:
    def keys(table: str) -> dict[str, str]:
        return {n: c["definition"] for n, c in at_017["tables"][table]["constraints"].items()
                if c["type"] in "pu"}

    assert keys("leads") == {"leads_pkey": "PRIMARY KEY (lead_id)",
                             "leads_lead_id_externo_key": "UNIQUE (lead_id_externo)"}
    assert keys("lead_telefones") == {"lead_telefones_pkey": "PRIMARY KEY (telefone_id)"}
    assert keys("lead_emails") == {"lead_emails_pkey": "PRIMARY KEY (email_id)"}
    assert keys("dry_run_log") == {"dry_run_log_pkey": "PRIMARY KEY (log_id)"}


def test_foreign_keys_cascade_and_dry_run_log_has_none(at_017: dict[str, Any]) -> None:
    def fks(table: str) -> dict[str, str]:
        return {n: c["definition"] for n, c in at_017["tables"][table]["constraints"].items()
                if c["type"] == "f"}

    assert fks("lead_telefones") == {
        "lead_telefones_lead_id_fkey":
            "FOREIGN KEY (lead_id) REFERENCES leads(lead_id) ON DELETE CASCADE"}
    assert fks("lead_emails") == {
        "lead_emails_lead_id_fkey":
            "FOREIGN KEY (lead_id) REFERENCES leads(lead_id) ON DELETE CASCADE"}
    assert fks("dry_run_log") == {}


@pytest.mark.parametrize("revision", ["017", "head"])
def test_every_comment_is_the_live_one_and_none_other(empty_url: URL, revision: str) -> None:
    command.upgrade(empty_url, revision)
    assert rows(empty_url, ALL_COMMENTS) == COMMENTS


def test_the_legacy_stand_in_carries_exactly_the_live_comments(legacy_url: URL) -> None:
    assert rows(legacy_url, ALL_COMMENTS) == COMMENTS


@pytest.mark.parametrize("revision", ["017", "head"])
def test_views_keep_the_legacy_columns(empty_url: URL, revision: str) -> None:
    command.upgrade(empty_url, revision)
    with connect(empty_url) as conn:
        snap = introspect.snapshot(conn)
    for name, columns in VIEW_COLUMNS.items():
        assert snap["objects"][f"view {name}"]["columns"] == columns


def test_the_legacy_function_as_live_and_broken_as_live(at_017: dict[str, Any],
                                                        empty_url: URL) -> None:
    fn = at_017["objects"]["function get_leads_para_disparo(integer, character varying)"]
    assert {k: fn[k] for k in LEGACY_FUNCTION} == LEGACY_FUNCTION
    assert "RETURN QUERY" in fn["body"]
    with connect(empty_url) as conn:
        conn.execute(text("INSERT INTO leads (lead_id_externo, origem_arquivo, origem_aba) "
                          "VALUES ('f.xlsx:2', 'f.xlsx', 'A')"))
        conn.execute(text("INSERT INTO lead_emails (lead_id, email, email_principal) "
                          "SELECT lead_id, 'a@x.com', true FROM leads"))
        with pytest.raises(DBAPIError) as caught:
            conn.execute(text("SELECT * FROM get_leads_para_disparo()"))
    message = str(caught.value.orig)
    assert "structure of query does not match function result type" in message
    assert "Returned type text does not match expected type character varying in column 5" \
        in message


def test_017_equals_a_database_built_by_the_legacy_files(at_017: dict[str, Any],
                                                         empty_url: URL,
                                                         legacy_url: URL) -> None:
    """Canonical definitions, comments and tables: what PostgreSQL reports, both routes."""
    with connect(legacy_url) as conn:
        legacy = introspect.snapshot(conn)
    assert legacy == at_017
    ours, theirs = rows(empty_url, DEFINITIONS), rows(legacy_url, DEFINITIONS)
    assert sorted(ours) == sorted(theirs) == [
        "function get_leads_para_disparo(integer,character varying)",
        "function update_updated_at_column()", "view v_leads_com_contatos",
        "view v_stats_ingestao"]
    for name in ours:  # the shared trigger function's layout is not a fact we know
        assert ours[name].split() == theirs[name].split(), name
    fn = "function get_leads_para_disparo(integer,character varying)"
    assert ours[fn] == theirs[fn]  # byte for byte
    extension = "SELECT 'pgcrypto', extname FROM pg_extension WHERE extname = 'pgcrypto'"
    assert rows(empty_url, extension) == rows(legacy_url, extension) == {"pgcrypto": "pgcrypto"}


LEADS = [
    # (externo, nome, status, days ago ingested)
    ("f.xlsx:2", "Ana", "novo", 5),
    ("f.xlsx:3", "Bia", "novo", 4),
    ("f.xlsx:4", "Caio", "novo", 3),
    ("f.xlsx:5", "Duda", "agendado", 2),
    ("f.xlsx:6", "Eva", "novo", 1),
]
CONTACTS = [
    # Ana: two principal e-mails (the older wins) and a principal phone -> ambos
    "INSERT INTO lead_emails (lead_id, email, email_principal, created_at) SELECT lead_id, "
    "'ana.nova@x.com', true, now() FROM leads WHERE nome = 'Ana'",
    "INSERT INTO lead_emails (lead_id, email, email_principal, created_at) SELECT lead_id, "
    "'ana@x.com', true, now() - interval '1 day' FROM leads WHERE nome = 'Ana'",
    "INSERT INTO lead_telefones (lead_id, telefone, telefone_principal) SELECT lead_id, "
    "'+5511911110000', true FROM leads WHERE nome = 'Ana'",
    # Bia: only a phone -> telefone
    "INSERT INTO lead_telefones (lead_id, telefone, telefone_principal) SELECT lead_id, "
    "'+5511922220000', true FROM leads WHERE nome = 'Bia'",
    # Caio: a principal e-mail that failed validation, and a non-principal one -> left out
    "INSERT INTO lead_emails (lead_id, email, email_principal, valido_para_disparo) SELECT "
    "lead_id, 'caio@x', true, false FROM leads WHERE nome = 'Caio'",
    "INSERT INTO lead_emails (lead_id, email) SELECT lead_id, 'caio@x.com' FROM leads "
    "WHERE nome = 'Caio'",
    # Duda: not 'novo' -> left out unless asked for
    "INSERT INTO lead_emails (lead_id, email, email_principal) SELECT lead_id, 'duda@x.com', "
    "true FROM leads WHERE nome = 'Duda'",
    # Eva: only an e-mail -> email
    "INSERT INTO lead_emails (lead_id, email, email_principal) SELECT lead_id, 'eva@x.com', "
    "true FROM leads WHERE nome = 'Eva'",
]


def test_get_leads_para_disparo_returns_the_right_leads_at_head(head_url: URL) -> None:
    with connect(head_url) as conn:
        for externo, nome, status, days in LEADS:
            conn.execute(text(
                "INSERT INTO leads (lead_id_externo, origem_arquivo, origem_aba, nome, status, "
                "data_ingestao) VALUES (:e, 'f.xlsx', 'A', :n, :s, now() - make_interval("
                "days => :d))"), {"e": externo, "n": nome, "s": status, "d": days})
        for statement in CONTACTS:
            conn.execute(text(statement))
        chosen = [tuple(r) for r in conn.execute(text(
            "SELECT nome, email, telefone, tipo_contato FROM get_leads_para_disparo()"))]
        assert chosen == [("Ana", "ana@x.com", "+5511911110000", "ambos"),
                          ("Bia", None, "+5511922220000", "telefone"),
                          ("Eva", "eva@x.com", None, "email")]
        assert [tuple(r) for r in conn.execute(text(
            "SELECT nome FROM get_leads_para_disparo(2)"))] == [("Ana",), ("Bia",)]
        assert [tuple(r) for r in conn.execute(text(
            "SELECT nome, tipo_contato FROM get_leads_para_disparo(10, 'agendado')"))] == \
            [("Duda", "email")]
        view = [tuple(r) for r in conn.execute(text(
            "SELECT nome, email_principal, telefone_principal, total_emails, total_telefones "
            "FROM v_leads_com_contatos ORDER BY nome"))]
        assert view[0] == ("Ana", "ana@x.com", "+5511911110000", 2, 1)
        assert view[2] == ("Caio", "caio@x", None, 2, 0)  # the view ignores validity
        stats = conn.execute(text(
            "SELECT origem_arquivo, total_leads, leads_com_documento, leads_novos, "
            "leads_em_disparo, leads_agendados, leads_contatados FROM v_stats_ingestao")).one()
        assert tuple(stats) == ("f.xlsx", 5, 0, 4, 0, 1, 0)


def test_updated_at_trigger_and_cascade_at_head(head_url: URL) -> None:
    with connect(head_url) as conn:
        lead = conn.execute(text(
            "INSERT INTO leads (lead_id_externo, origem_arquivo, origem_aba, nome) "
            "VALUES ('f.xlsx:2', 'f.xlsx', 'A', 'Ana') RETURNING lead_id")).scalar()
        conn.execute(text("INSERT INTO lead_telefones (lead_id, telefone) VALUES (:l, '+55')"),
                     {"l": lead})
        before = conn.execute(text("SELECT updated_at FROM leads WHERE lead_id = :l"),
                              {"l": lead}).scalar_one()
        conn.commit()
        conn.execute(text("UPDATE leads SET status = 'agendado' WHERE lead_id = :l"),
                     {"l": lead})
        after = conn.execute(text("SELECT updated_at FROM leads WHERE lead_id = :l"),
                             {"l": lead}).scalar_one()
        assert after > before
        conn.execute(text("DELETE FROM leads WHERE lead_id = :l"), {"l": lead})
        assert conn.execute(text("SELECT count(*) FROM lead_telefones WHERE lead_id = :l"),
                            {"l": lead}).scalar() == 0


# docs/CONTEXT.md: the live body (pg_proc.prosrc) is 755 characters with this md5, two lines
# ending in one trailing space and a lower-case ``as``.
LIVE_BODY_LENGTH = 755
LIVE_BODY_MD5 = "9f89ed7eef1eebfa93fcbe03549bf6c8"
PROSRC = "SELECT prosrc FROM pg_proc WHERE proname = 'get_leads_para_disparo'"


def _prosrc(url: URL) -> str:
    with connect(url) as conn:
        return str(conn.execute(text(PROSRC)).scalar_one())


def _is_the_live_body(body: str) -> None:
    assert len(body) == LIVE_BODY_LENGTH
    assert hashlib.md5(body.encode()).hexdigest() == LIVE_BODY_MD5  # noqa: S324 (a fact's)
    assert "\n    SELECT \n" in body
    assert "\n        CASE \n" in body
    assert "\n        END as tipo_contato\n" in body


@pytest.mark.parametrize("route", ["upgrade 017", "legacy files", "downgrade 020"])
def test_the_legacy_function_body_is_the_live_one_byte_for_byte(route: str, empty_url: URL,
                                                                 legacy_url: URL) -> None:
    """Every route that makes the legacy function makes exactly the live body."""
    if route == "legacy files":
        _is_the_live_body(_prosrc(legacy_url))
        return
    command.upgrade(empty_url, "017" if route == "upgrade 017" else "020")
    if route == "downgrade 020":
        assert "LATERAL" in _prosrc(empty_url)  # the repaired one, before
        command.downgrade(empty_url, "019")
    _is_the_live_body(_prosrc(empty_url))


def test_a_dropped_and_re_added_column_compares_by_position_not_attnum(
        at_017: dict[str, Any], empty_url: URL) -> None:
    """A revision pair that drops and re-adds the last column builds the same table as a
    fresh build: PostgreSQL keeps the dropped column's attnum, the snapshot must not."""
    table = at_017["tables"]["dry_run_log"]
    last = table["columns"][-1]
    with connect(empty_url) as conn:
        conn.execute(text(f'ALTER TABLE dry_run_log DROP COLUMN "{last["name"]}"'))
        conn.execute(text(f'ALTER TABLE dry_run_log ADD COLUMN "{last["name"]}" '
                          f'{last["type"]} DEFAULT {last["default"] or "NULL"}'))
        if last["comment"] is not None:
            conn.execute(text(f"COMMENT ON COLUMN dry_run_log.\"{last['name']}\" IS "
                              ":c").bindparams(c=last["comment"]))
        if not last["nullable"]:
            conn.execute(text(f'ALTER TABLE dry_run_log ALTER "{last["name"]}" SET NOT NULL'))
        again = introspect.snapshot(conn)["tables"]["dry_run_log"]["columns"]
    assert again == table["columns"]
