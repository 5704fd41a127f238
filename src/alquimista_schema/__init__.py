"""alquimista-schema: the PostgreSQL schema of AlquimistaAI's dispatch agent, and its migrations."""

__version__ = "0.1.0"
