"""Views, functions and triggers the package owns, declared as SQL.

A small registry of our own rather than alembic-utils: alembic-utils proposes to
drop every undeclared entity in a schema it inspects, and ``public`` holds the
older platform's functions (``update_updated_at_column()`` among them), which
must never show up as something to drop. Here only declared objects are ever
compared. Revision files copy the SQL text they apply (a revision is a snapshot);
these declarations are the *current* desired definitions that autogenerate and
``check`` compare the live database against (see :mod:`alquimista_schema.autogen`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["view", "function", "trigger"]


@dataclass(frozen=True)
class SchemaObject:
    """A database object defined by SQL text rather than by table metadata."""

    kind: Kind
    name: str
    """Identity in the schema: view name, function signature, or ``trigger ON table``."""
    create_sql: str
    """Idempotent ``CREATE OR REPLACE`` statement."""
    drop_sql: str

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"


def view(name: str, select: str) -> SchemaObject:
    """Declare a view ``name`` as ``select``."""
    body = select.strip().rstrip(";")
    return SchemaObject(
        kind="view",
        name=name,
        create_sql=f"CREATE OR REPLACE VIEW {name} AS\n{body};",
        drop_sql=f"DROP VIEW IF EXISTS {name};",
    )


def function(signature: str, create_sql: str) -> SchemaObject:
    """Declare a function identified by ``signature`` (argument types only)."""
    return SchemaObject(
        kind="function",
        name=signature,
        create_sql=create_sql.strip(),
        drop_sql=f"DROP FUNCTION IF EXISTS {signature};",
    )


def trigger(name: str, table: str, create_sql: str) -> SchemaObject:
    """Declare a trigger ``name`` on ``table``."""
    return SchemaObject(
        kind="trigger",
        name=f"{name} ON {table}",
        create_sql=create_sql.strip(),
        drop_sql=f"DROP TRIGGER IF EXISTS {name} ON {table};",
    )


# The older platform's trigger function, shared by about twenty triggers in other
# schemas. The package creates it only where it is missing and never replaces or
# drops one it did not create (see the lead_ingestion revision).
SHARED_UPDATED_AT_FUNCTION = "update_updated_at_column()"

V_LEADS_COM_CONTATOS = view(
    "v_leads_com_contatos",
    """
SELECT l.lead_id,
       l.lead_id_externo,
       l.origem_arquivo,
       l.origem_aba,
       l.nome,
       l.contato_nome,
       l.documento,
       l.status,
       l.tags,
       l.data_ingestao,
       (SELECT e.email FROM lead_emails e
         WHERE e.lead_id = l.lead_id AND e.email_principal = true
         ORDER BY e.created_at LIMIT 1) AS email_principal,
       (SELECT t.telefone FROM lead_telefones t
         WHERE t.lead_id = l.lead_id AND t.telefone_principal = true
         ORDER BY t.created_at LIMIT 1) AS telefone_principal,
       (SELECT count(*) FROM lead_emails e WHERE e.lead_id = l.lead_id) AS total_emails,
       (SELECT count(*) FROM lead_telefones t WHERE t.lead_id = l.lead_id) AS total_telefones
  FROM leads l
""",
)

V_STATS_INGESTAO = view(
    "v_stats_ingestao",
    """
SELECT origem_arquivo,
       count(*) AS total_leads,
       count(DISTINCT documento) AS leads_com_documento,
       min(data_ingestao) AS primeira_ingestao,
       max(data_ingestao) AS ultima_ingestao,
       count(*) FILTER (WHERE status = 'novo') AS status_novo,
       count(*) FILTER (WHERE status = 'em_disparo') AS status_em_disparo,
       count(*) FILTER (WHERE status = 'agendado') AS status_agendado,
       count(*) FILTER (WHERE status = 'contato_efetuado') AS status_contato_efetuado
  FROM leads
 GROUP BY origem_arquivo
 ORDER BY max(data_ingestao) DESC
""",
)

GET_LEADS_PARA_DISPARO = function(
    "get_leads_para_disparo(integer, character varying)",
    """
CREATE OR REPLACE FUNCTION get_leads_para_disparo(
    p_limit integer DEFAULT 100,
    p_status character varying DEFAULT 'novo'
)
RETURNS TABLE (
    lead_id uuid,
    nome character varying,
    email character varying,
    telefone character varying,
    tipo_contato text
)
LANGUAGE sql
STABLE
AS $function$
    SELECT l.lead_id,
           l.nome,
           e.email,
           t.telefone,
           CASE
               WHEN e.email IS NOT NULL AND t.telefone IS NOT NULL THEN 'ambos'
               WHEN e.email IS NOT NULL THEN 'email'
               ELSE 'telefone'
           END AS tipo_contato
      FROM leads l
      LEFT JOIN LATERAL (
           SELECT le.email FROM lead_emails le
            WHERE le.lead_id = l.lead_id AND le.email_principal AND le.valido_para_disparo
            ORDER BY le.created_at LIMIT 1) e ON true
      LEFT JOIN LATERAL (
           SELECT lt.telefone FROM lead_telefones lt
            WHERE lt.lead_id = l.lead_id AND lt.telefone_principal AND lt.valido_para_disparo
            ORDER BY lt.created_at LIMIT 1) t ON true
     WHERE l.status = p_status
       AND (e.email IS NOT NULL OR t.telefone IS NOT NULL)
     ORDER BY l.data_ingestao ASC
     LIMIT p_limit
$function$;
""",
)

TRG_LEADS_UPDATED_AT = trigger(
    "update_leads_updated_at",
    "leads",
    """
CREATE OR REPLACE TRIGGER update_leads_updated_at
    BEFORE UPDATE ON leads
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
""",
)

REGISTRY: tuple[SchemaObject, ...] = (
    V_LEADS_COM_CONTATOS,
    V_STATS_INGESTAO,
    GET_LEADS_PARA_DISPARO,
    TRG_LEADS_UPDATED_AT,
)
