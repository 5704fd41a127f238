"""At 017 the schema is the legacy one: CONTEXT.md's facts, and equal to the legacy files."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import introspect, migrate
from alquimista_schema.database import connect

V = "character varying"
TS = "timestamp without time zone"
# (name, type, nullable, default) in column order, transcribed from CONTEXT.md.
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

# index name -> definition after "ON public.<table> USING btree "
INDEXES: dict[str, dict[str, str]] = {
    "dry_run_log": {
        "dry_run_log_pkey": "(log_id)",
        "idx_dry_run_tenant": "(tenant_id, created_at DESC)",
        "idx_dry_run_canal": "(canal_decidido)",
        "idx_dry_run_ambiente": "(ambiente, created_at DESC)",
    },
    "leads": {
        "leads_pkey": "(lead_id)",
        "leads_lead_id_externo_key": "(lead_id_externo)",
        "idx_leads_status": "(status)",
        "idx_leads_externo": "(lead_id_externo)",
        "idx_leads_origem": "(origem_arquivo, origem_aba)",
        "idx_leads_data_ingestao": "(data_ingestao DESC)",
        "idx_leads_documento": "(documento) WHERE (documento IS NOT NULL)",
    },
    "lead_telefones": {
        "lead_telefones_pkey": "(telefone_id)",
        "idx_lead_telefones_lead": "(lead_id)",
        "idx_lead_telefones_valido": "(valido_para_disparo)",
        "idx_lead_telefones_principal": "(lead_id, telefone_principal)",
        "idx_lead_telefones_tipo": "(tipo_origem)",
    },
    "lead_emails": {
        "lead_emails_pkey": "(email_id)",
        "idx_lead_emails_lead": "(lead_id)",
        "idx_lead_emails_valido": "(valido_para_disparo)",
        "idx_lead_emails_principal": "(lead_id, email_principal)",
        "idx_lead_emails_email": "(email)",
    },
}


@pytest.fixture
def at_017(empty_url: URL) -> dict[str, Any]:
    migrate.upgrade(empty_url, "017")
    with connect(empty_url) as conn:
        return introspect.snapshot(conn)


@pytest.mark.parametrize("table", sorted(COLUMNS))
def test_columns_match_context_md(at_017: dict[str, Any], table: str) -> None:
    got = [(c["name"], c["type"], c["nullable"], c["default"])
           for c in at_017["tables"][table]["columns"]]
    assert got == COLUMNS[table]


@pytest.mark.parametrize("table", sorted(INDEXES))
def test_indexes_match_context_md(at_017: dict[str, Any], table: str) -> None:
    unique = {"dry_run_log_pkey", "leads_pkey", "leads_lead_id_externo_key",
              "lead_telefones_pkey", "lead_emails_pkey"}
    expected = {
        name: f"CREATE {'UNIQUE ' if name in unique else ''}INDEX {name} "
              f"ON public.{table} USING btree {cols}"
        for name, cols in INDEXES[table].items()
    }
    assert at_017["tables"][table]["indexes"] == expected


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


def test_017_equals_a_database_built_by_the_legacy_files(at_017: dict[str, Any],
                                                         legacy_url: URL) -> None:
    with connect(legacy_url) as conn:
        legacy = introspect.snapshot(conn)
    assert legacy == at_017


def test_views_function_and_trigger_behave(head_url: URL) -> None:
    with connect(head_url) as conn:
        lead = conn.execute(text(
            "INSERT INTO leads (lead_id_externo, origem_arquivo, origem_aba, nome, documento) "
            "VALUES ('f.xlsx:2', 'f.xlsx', 'A', 'Ana', '123') RETURNING lead_id")).scalar()
        only_phone = conn.execute(text(
            "INSERT INTO leads (lead_id_externo, origem_arquivo, origem_aba, nome) "
            "VALUES ('f.xlsx:3', 'f.xlsx', 'A', 'Bia') RETURNING lead_id")).scalar()
        conn.execute(text("INSERT INTO lead_emails (lead_id, email, email_principal) "
                          "VALUES (:l, 'ana@x.com', true)"), {"l": lead})
        conn.execute(text("INSERT INTO lead_telefones (lead_id, telefone, telefone_principal) "
                          "VALUES (:l, '+5511999', true), (:b, '+5511888', true)"),
                     {"l": lead, "b": only_phone})
        conn.execute(text("INSERT INTO lead_telefones (lead_id, telefone) "
                          "VALUES (:l, '+5511777')"), {"l": lead})
        rows = conn.execute(text(
            "SELECT nome, email_principal, telefone_principal, total_emails, total_telefones "
            "FROM v_leads_com_contatos ORDER BY nome")).all()
        assert [tuple(r) for r in rows] == [("Ana", "ana@x.com", "+5511999", 1, 2),
                                            ("Bia", None, "+5511888", 0, 1)]
        stats = conn.execute(text("SELECT origem_arquivo, total_leads, leads_com_documento, "
                                  "status_novo FROM v_stats_ingestao")).one()
        assert tuple(stats) == ("f.xlsx", 2, 1, 2)
        chosen = conn.execute(text(
            "SELECT nome, tipo_contato FROM get_leads_para_disparo(10) ORDER BY nome")).all()
        assert [tuple(r) for r in chosen] == [("Ana", "ambos"), ("Bia", "telefone")]
        assert conn.execute(text("SELECT count(*) FROM get_leads_para_disparo(1)")).scalar() == 1
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
