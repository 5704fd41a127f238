"""Views, functions and triggers the package owns, declared as SQL.

A small registry of our own rather than alembic-utils: alembic-utils proposes to
drop every undeclared entity in a schema it inspects, and ``public`` holds the
older platform's functions (``update_updated_at_column()`` among them), which
must never show up as something to drop. Here only declared objects are ever
compared. Revision files copy the SQL text they apply (a revision is a snapshot);
these declarations are the *current* (head) definitions that autogenerate and
``check`` compare the live database against, comments included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["view", "function", "trigger"]


def quote_literal(value: str) -> str:
    """Return ``value`` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class SchemaObject:
    """A database object defined by SQL text rather than by table metadata."""

    kind: Kind
    name: str
    """Identity in the schema: view name, function signature, or ``trigger ON table``."""
    create_sql: str
    """Idempotent ``CREATE OR REPLACE`` statement."""
    drop_sql: str
    comment: str | None = None
    """``COMMENT ON`` text; live databases carry one on the views and the function."""

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    def comment_sql(self, comment: str | None) -> str:
        """Return the statement that sets (or, for None, removes) the comment."""
        value = "NULL" if comment is None else quote_literal(comment)
        return f"COMMENT ON {self.kind.upper()} {self.name} IS {value};"

    @property
    def statements(self) -> tuple[str, ...]:
        """Statements that create the object as declared (a DROP loses the comment)."""
        if self.comment is None:
            return (self.create_sql,)
        return (self.create_sql, self.comment_sql(self.comment))


def view(name: str, select: str, *, comment: str | None = None) -> SchemaObject:
    """Declare a view ``name`` as ``select``."""
    body = select.strip().rstrip(";")
    return SchemaObject(
        kind="view",
        name=name,
        create_sql=f"CREATE OR REPLACE VIEW {name} AS\n{body};",
        drop_sql=f"DROP VIEW IF EXISTS {name};",
        comment=comment,
    )


def function(signature: str, create_sql: str, *, comment: str | None = None) -> SchemaObject:
    """Declare a function identified by ``signature`` (argument types only)."""
    return SchemaObject(
        kind="function",
        name=signature,
        create_sql=create_sql.strip(),
        drop_sql=f"DROP FUNCTION IF EXISTS {signature};",
        comment=comment,
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
# drops it (see the lead_ingestion revision), like the pgcrypto extension.
SHARED_UPDATED_AT_FUNCTION = "update_updated_at_column()"

# Revision 021: the principal e-mail and phone are the oldest principal ones, so a
# lead with two principal contacts shows the same one every time. Same columns, same
# names, types and positions as the legacy view (dashboards read them).
V_LEADS_COM_CONTATOS = view(
    "v_leads_com_contatos",
    """
SELECT
    l.lead_id,
    l.lead_id_externo,
    l.nome,
    l.contato_nome,
    l.documento,
    l.status,
    l.tags,
    l.data_ingestao,
    (SELECT e.email FROM lead_emails e
      WHERE e.lead_id = l.lead_id AND e.email_principal = TRUE
      ORDER BY e.created_at, e.email_id LIMIT 1) AS email_principal,
    (SELECT t.telefone FROM lead_telefones t
      WHERE t.lead_id = l.lead_id AND t.telefone_principal = TRUE
      ORDER BY t.created_at, t.telefone_id LIMIT 1) AS telefone_principal,
    (SELECT COUNT(*) FROM lead_emails WHERE lead_id = l.lead_id) AS total_emails,
    (SELECT COUNT(*) FROM lead_telefones WHERE lead_id = l.lead_id) AS total_telefones
FROM leads l
""",
    comment="View de leads com seus contatos principais agregados",
)

# As the legacy ingestion script made it (revision lead_ingestion).
V_STATS_INGESTAO = view(
    "v_stats_ingestao",
    """
SELECT
    origem_arquivo,
    COUNT(*) AS total_leads,
    COUNT(DISTINCT documento) FILTER (WHERE documento IS NOT NULL) AS leads_com_documento,
    MIN(data_ingestao) AS primeira_ingestao,
    MAX(data_ingestao) AS ultima_ingestao,
    COUNT(*) FILTER (WHERE status = 'novo') AS leads_novos,
    COUNT(*) FILTER (WHERE status = 'em_disparo') AS leads_em_disparo,
    COUNT(*) FILTER (WHERE status = 'agendado') AS leads_agendados,
    COUNT(*) FILTER (WHERE status = 'contato_efetuado') AS leads_contatados
FROM leads
GROUP BY origem_arquivo
ORDER BY ultima_ingestao DESC
""",
    comment="Estatísticas de ingestão por arquivo",
)

# Revision 020: the legacy function failed on every call (its CASE yields text where
# the result says varchar) and listed a lead once per principal contact.
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
    tipo_contato character varying
)
LANGUAGE sql
STABLE
AS $function$
    SELECT l.lead_id,
           l.nome,
           e.email,
           t.telefone,
           CAST(CASE
                    WHEN e.email IS NOT NULL AND t.telefone IS NOT NULL THEN 'ambos'
                    WHEN e.email IS NOT NULL THEN 'email'
                    WHEN t.telefone IS NOT NULL THEN 'telefone'
                    ELSE 'nenhum'
                END AS character varying) AS tipo_contato
      FROM leads l
      LEFT JOIN LATERAL (
           SELECT le.email FROM lead_emails le
            WHERE le.lead_id = l.lead_id AND le.email_principal AND le.valido_para_disparo
            ORDER BY le.created_at, le.email_id
            LIMIT 1) e ON true
      LEFT JOIN LATERAL (
           SELECT lt.telefone FROM lead_telefones lt
            WHERE lt.lead_id = l.lead_id AND lt.telefone_principal AND lt.valido_para_disparo
            ORDER BY lt.created_at, lt.telefone_id
            LIMIT 1) t ON true
     WHERE l.status = p_status
       AND (e.email IS NOT NULL OR t.telefone IS NOT NULL)
     ORDER BY l.data_ingestao ASC, l.lead_id
     LIMIT p_limit
$function$;
""",
    comment="Busca leads prontos para disparo com contatos válidos",
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
