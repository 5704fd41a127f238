-- Legacy ingestion schema, written as the old ingestion script applied it with psql.
-- Rebuilt from CONTEXT.md for the tests: a database made by these files must equal
-- one upgraded to revision 017.

CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

create table if not exists leads (
    lead_id uuid primary key default gen_random_uuid(),
    lead_id_externo varchar(255) not null unique, -- "arquivo:linha"
    origem_arquivo varchar(255) not null,
    origem_aba varchar(100) not null,
    nome varchar(255),
    contato_nome varchar(255),
    documento varchar(20),
    email_raw text,          -- raw, several values separated by |
    telefone_raw text,
    status varchar(50) default 'novo', -- novo, em_disparo, agendado, contato_efetuado, sem_sucesso, descartado
    tags jsonb default '[]',
    data_ingestao timestamp default now(),
    created_at timestamp default now(),
    updated_at timestamp default now()
);

create index if not exists idx_leads_status on leads(status);
create index if not exists idx_leads_externo on leads(lead_id_externo);
create index if not exists idx_leads_origem on leads(origem_arquivo, origem_aba);
create index if not exists idx_leads_data_ingestao on leads(data_ingestao desc);
create index if not exists idx_leads_documento on leads(documento) where documento is not null;

create table if not exists lead_telefones (
    telefone_id uuid primary key default gen_random_uuid(),
    lead_id uuid not null references leads(lead_id) on delete cascade,
    telefone varchar(50) not null,
    telefone_principal boolean default false,
    tipo_origem varchar(50) default 'nao_classificado', -- movel, fixo, internacional, desconhecido, nao_classificado
    valido_para_disparo boolean default true,
    created_at timestamp default now()
);

create index if not exists idx_lead_telefones_lead on lead_telefones(lead_id);
create index if not exists idx_lead_telefones_valido on lead_telefones(valido_para_disparo);
create index if not exists idx_lead_telefones_principal on lead_telefones(lead_id, telefone_principal);
create index if not exists idx_lead_telefones_tipo on lead_telefones(tipo_origem);

create table if not exists lead_emails (
    email_id uuid primary key default gen_random_uuid(),
    lead_id uuid not null references leads(lead_id) on delete cascade,
    email varchar(255) not null,
    email_principal boolean default false,
    valido_para_disparo boolean default true,
    created_at timestamp default now()
);

create index if not exists idx_lead_emails_lead on lead_emails(lead_id);
create index if not exists idx_lead_emails_valido on lead_emails(valido_para_disparo);
create index if not exists idx_lead_emails_principal on lead_emails(lead_id, email_principal);
create index if not exists idx_lead_emails_email on lead_emails(email);

drop trigger if exists update_leads_updated_at on leads;
create trigger update_leads_updated_at
    before update on leads
    for each row execute function update_updated_at_column();

CREATE OR REPLACE VIEW v_leads_com_contatos AS
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
  FROM leads l;

CREATE OR REPLACE VIEW v_stats_ingestao AS
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
 ORDER BY max(data_ingestao) DESC;

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
