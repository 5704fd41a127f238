"""SQLAlchemy models: the source of truth for the tables this package owns.

Column types, defaults, index names and comments follow the legacy SQL files
exactly (see docs/CONTEXT.md), so that a database those files built can be adopted, and
``check`` compares the comments the live databases carry. The naming
convention reproduces PostgreSQL's own default names for keys, so legacy
constraint names and future ones come from one deterministic rule.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from alquimista_schema.schema import objects

NAMING_CONVENTION = {
    # PostgreSQL's defaults, so the legacy (unnamed) keys already follow the rule.
    "pk": "%(table_name)s_pkey",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    # Legacy checks did not exist; new ones are named after what they check.
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "ix": "idx_%(table_name)s_%(column_0_N_name)s",
}

# Tables dropped from the models stay listed here, so autogenerate still owns them
# and proposes their drop. Anything neither modelled nor listed is not ours.
RETIRED_TABLES: frozenset[str] = frozenset()

CANAIS = ("whatsapp", "email", "calendar", "none")
AMBIENTES = ("dev", "prod")
LEAD_STATUS = ("novo", "em_disparo", "agendado", "contato_efetuado", "sem_sucesso", "descartado")
TIPOS_ORIGEM = ("movel", "fixo", "internacional", "desconhecido", "nao_classificado")


def _in_list(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


Timestamp = DateTime(timezone=False)
NOW = text("now()")
NEW_UUID = text("gen_random_uuid()")


class Lead(Base):
    """A lead imported from a spreadsheet; phones and e-mails are split out."""

    __tablename__ = "leads"

    lead_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True,
                                               server_default=NEW_UUID,
                                               comment="ID interno único do lead")
    lead_id_externo: Mapped[str] = mapped_column(
        String(255), comment="ID externo para rastreabilidade (arquivo:linha)")
    origem_arquivo: Mapped[str] = mapped_column(String(255), comment="Nome do arquivo de origem")
    origem_aba: Mapped[str] = mapped_column(String(100), comment="Nome da aba da planilha")
    nome: Mapped[str | None] = mapped_column(String(255))
    contato_nome: Mapped[str | None] = mapped_column(String(255))
    documento: Mapped[str | None] = mapped_column(String(20))
    email_raw: Mapped[str | None] = mapped_column(
        Text, comment="String bruta de emails (pode conter múltiplos separados por |)")
    telefone_raw: Mapped[str | None] = mapped_column(
        Text, comment="String bruta de telefones (pode conter múltiplos separados por |)")
    status: Mapped[str | None] = mapped_column(
        String(50), server_default=text("'novo'"),
        comment="Status do lead: novo, em_disparo, agendado, contato_efetuado, sem_sucesso, "
                "descartado")
    tags: Mapped[Any | None] = mapped_column(JSONB, server_default=text("'[]'::jsonb"),
                                             comment="Tags adicionais em formato JSON array")
    data_ingestao: Mapped[datetime | None] = mapped_column(Timestamp, server_default=NOW)
    created_at: Mapped[datetime | None] = mapped_column(Timestamp, server_default=NOW)
    updated_at: Mapped[datetime | None] = mapped_column(Timestamp, server_default=NOW)

    __table_args__ = (
        UniqueConstraint("lead_id_externo"),
        CheckConstraint(_in_list("status", LEAD_STATUS), name="status"),
        Index("idx_leads_status", "status"),
        Index("idx_leads_externo", "lead_id_externo"),
        Index("idx_leads_origem", "origem_arquivo", "origem_aba"),
        Index("idx_leads_data_ingestao", text("data_ingestao DESC")),
        Index("idx_leads_documento", "documento",
              postgresql_where=text("documento IS NOT NULL")),
        {"comment": "Tabela principal de leads importados de planilhas"},
    )


class LeadTelefone(Base):
    """A phone number of a lead, classified for dispatch."""

    __tablename__ = "lead_telefones"

    telefone_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True,
                                                   server_default=NEW_UUID)
    lead_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("leads.lead_id", ondelete="CASCADE"))
    telefone: Mapped[str] = mapped_column(String(50))
    telefone_principal: Mapped[bool | None] = mapped_column(
        Boolean, server_default=text("false"),
        comment="Indica se é o telefone principal (primeiro da lista)")
    tipo_origem: Mapped[str | None] = mapped_column(
        String(50), server_default=text("'nao_classificado'"),
        comment="Tipo: movel, fixo, internacional, desconhecido, nao_classificado")
    valido_para_disparo: Mapped[bool | None] = mapped_column(
        Boolean, server_default=text("true"),
        comment="Se passou nas validações de formato e DDD")
    created_at: Mapped[datetime | None] = mapped_column(Timestamp, server_default=NOW)

    __table_args__ = (
        CheckConstraint(_in_list("tipo_origem", TIPOS_ORIGEM), name="tipo_origem"),
        Index("idx_lead_telefones_lead", "lead_id"),
        Index("idx_lead_telefones_valido", "valido_para_disparo"),
        Index("idx_lead_telefones_principal", "lead_id", "telefone_principal"),
        Index("idx_lead_telefones_tipo", "tipo_origem"),
        {"comment": "Telefones explodidos de cada lead"},
    )


class LeadEmail(Base):
    """An e-mail address of a lead."""

    __tablename__ = "lead_emails"

    email_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True,
                                                server_default=NEW_UUID)
    lead_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("leads.lead_id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(255))
    email_principal: Mapped[bool | None] = mapped_column(
        Boolean, server_default=text("false"),
        comment="Indica se é o email principal (primeiro da lista)")
    valido_para_disparo: Mapped[bool | None] = mapped_column(
        Boolean, server_default=text("true"),
        comment="Se passou nas validações de formato e sintaxe")
    created_at: Mapped[datetime | None] = mapped_column(Timestamp, server_default=NOW)

    __table_args__ = (
        Index("idx_lead_emails_lead", "lead_id"),
        Index("idx_lead_emails_valido", "valido_para_disparo"),
        Index("idx_lead_emails_principal", "lead_id", "email_principal"),
        Index("idx_lead_emails_email", "email"),
        {"comment": "Emails explodidos de cada lead"},
    )


class DryRunLog(Base):
    """One channel decision taken by the agent in dry-run mode.

    No foreign key to ``leads``: a log row outlives its lead.
    """

    __tablename__ = "dry_run_log"

    log_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True,
                                              server_default=NEW_UUID)
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    lead_nome: Mapped[str | None] = mapped_column(String(500))
    lead_telefone: Mapped[str | None] = mapped_column(String(50))
    lead_email: Mapped[str | None] = mapped_column(String(255))
    lead_documento: Mapped[str | None] = mapped_column(String(20))
    canal_decidido: Mapped[str] = mapped_column(
        String(20),
        comment="Canal escolhido pela lógica de decisão (whatsapp, email, calendar, none)")
    motivo_decisao: Mapped[str] = mapped_column(
        Text, comment="Explicação de por que este canal foi escolhido")
    template_selecionado: Mapped[str | None] = mapped_column(String(100))
    disparo_seria_executado: Mapped[bool | None] = mapped_column(
        Boolean, server_default=text("true"),
        comment="Se true, o disparo seria executado em modo real (sem bloqueios)")
    razao_bloqueio: Mapped[str | None] = mapped_column(
        Text, comment="Motivo pelo qual o disparo não seria executado (ex: rate limit, "
                      "horário não comercial)")
    ambiente: Mapped[str | None] = mapped_column(String(10), server_default=text("'dev'"))
    feature_flag_enabled: Mapped[bool | None] = mapped_column(
        Boolean, server_default=text("false"),
        comment="Valor da feature flag MICRO_AGENT_DISPARO_ENABLED no momento do teste")
    created_at: Mapped[datetime | None] = mapped_column(Timestamp, server_default=NOW)

    __table_args__ = (
        CheckConstraint(_in_list("canal_decidido", CANAIS), name="canal_decidido"),
        CheckConstraint(_in_list("ambiente", AMBIENTES), name="ambiente"),
        Index("idx_dry_run_tenant", "tenant_id", text("created_at DESC")),
        Index("idx_dry_run_canal", "canal_decidido"),
        Index("idx_dry_run_ambiente", "ambiente", text("created_at DESC")),
        {"comment": "Log de auditoria para testes dry-run do Micro Agente de Disparos & "
                    "Agendamentos"},
    )


metadata = Base.metadata
# Views, functions and triggers ride on the MetaData, so a copy of the metadata
# (a test's, a tool's) carries its own set of schema objects to compare.
metadata.info["schema_objects"] = objects.REGISTRY
metadata.info["retired_tables"] = RETIRED_TABLES


def owned_tables(md: MetaData) -> frozenset[str]:
    """Return the names of the tables the package owns under ``md``."""
    retired: frozenset[str] = md.info.get("retired_tables", frozenset())
    return frozenset(t.name for t in md.tables.values()) | retired
