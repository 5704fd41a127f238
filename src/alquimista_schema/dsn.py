"""Connection parameters without SQLAlchemy: what a cold no-op needs, and no more.

Importing SQLAlchemy costs about 200 ms, most of a cold no-op when the secret comes
from the Parameters and Secrets extension. A secret's credentials are held as a
``Dsn``; the fast path reads its fields as a SQLAlchemy ``URL``'s (host, port,
username, password, database, query), and the full path converts it with
:meth:`Dsn.to_url` when it loads SQLAlchemy anyway. A leaf: it imports nothing of
the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

DRIVERNAME = "postgresql+psycopg2"


@dataclass(frozen=True, repr=False)
class Dsn:
    """A PostgreSQL connection for psycopg2; never shows its password."""

    host: str
    port: int
    username: str
    password: str
    database: str
    query: Mapping[str, str] = field(default_factory=dict)

    drivername = DRIVERNAME

    def render_as_string(self, hide_password: bool = True) -> str:
        """Render as a URL (user and password percent-encoded), the password masked by default."""
        secret = "***" if hide_password else quote(self.password, safe="")
        params = "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in self.query.items())
        return (f"{DRIVERNAME}://{quote(self.username, safe='')}:{secret}@{self.host}:"
                f"{self.port}/{self.database}" + (f"?{params}" if params else ""))

    def to_url(self) -> URL:
        """The same connection as a SQLAlchemy URL (imports SQLAlchemy)."""
        from sqlalchemy.engine import URL

        return URL.create(DRIVERNAME, username=self.username, password=self.password,
                          host=self.host, port=self.port, database=self.database,
                          query=dict(self.query))

    def __repr__(self) -> str:
        return f"Dsn({self.render_as_string(hide_password=True)!r})"

    __str__ = __repr__
