"""Connection parameters without SQLAlchemy, and the one grammar of database URLs.

Importing SQLAlchemy costs about 200 ms, most of a cold no-op. A URL is parsed here,
by :func:`parse`, into a ``Dsn``; the no-op probe reads its fields as a SQLAlchemy
``URL``'s (host, port, username, password, database, query: ``UrlLike``), and a run
converts it with ``database.parse_url`` when it loads SQLAlchemy anyway. No message
here quotes the URL: it holds a password. Imports only the exception tree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qsl, quote, unquote

from alquimista_schema.errors import ConfigurationError

DRIVERNAME = "postgresql+psycopg2"
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
MALFORMED = "the database URL is not valid; expected postgresql://user:password@host:port/dbname"


class UrlLike(Protocol):
    """What the package reads of a URL: a ``Dsn``, or a SQLAlchemy ``URL``, alike."""

    @property
    def host(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def database(self) -> str | None: ...
    @property
    def query(self) -> Mapping[str, str | tuple[str, ...]]: ...

    def render_as_string(self, hide_password: bool = True) -> str: ...


@dataclass(frozen=True, repr=False)
class Dsn:
    """A PostgreSQL connection for psycopg2; never shows its password."""

    host: str | None
    port: int | None
    username: str | None
    password: str | None
    database: str | None
    query: Mapping[str, str] = field(default_factory=dict)

    drivername = DRIVERNAME

    def render_as_string(self, hide_password: bool = True) -> str:
        """Render as a URL (user and password percent-encoded), the password masked by default."""
        user = quote(self.username or "", safe="")
        if self.password is not None:
            user += ":" + ("***" if hide_password else quote(self.password, safe=""))
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host or ""
        port = f":{self.port}" if self.port is not None else ""
        params = "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in self.query.items())
        return (f"{DRIVERNAME}://{user}{'@' if user else ''}{host}{port}/"
                f"{quote(self.database or '', safe='')}" + (f"?{params}" if params else ""))

    def __repr__(self) -> str:
        return f"Dsn({self.render_as_string(hide_password=True)!r})"

    __str__ = __repr__


_USERINFO = re.compile(r"(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@")
_AT_HINT = ("the database URL has an '@' after the one that ends the user and password: a "
            "password (or user) holding @ : / ? # % must be percent-encoded (@ is %40, : is "
            "%3A, / is %2F), e.g. with urllib.parse.quote(password, safe='')")


def parse(text: str) -> Dsn:
    """Parse ``postgresql[+psycopg2]://user:password@host:port/dbname?key=value``.

    Raise ConfigurationError, never quoting the text (no error is chained either).
    """
    _check_text(text)
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme.replace("+", "").replace("_", "").isalnum():
        raise ConfigurationError(MALFORMED)
    _check_scheme(scheme)
    # SQLAlchemy's make_url grammar: the password runs to the first '@' (it may hold / ?).
    userinfo = _USERINFO.match(rest)
    username = password = None
    if userinfo:
        username = unquote(userinfo["username"])
        password = None if userinfo["password"] is None else unquote(userinfo["password"])
        rest = rest[userinfo.end():]
    # A second '@' anywhere after the one ending the user and password means one of them
    # holds an unencoded '@': nothing tells where the password ends, and split at the
    # first its tail would be taken for a host (looked up in DNS), a database or a driver
    # option, and shown in errors. Without user and password, '@' may be a query value's.
    rest, _, query = rest.partition("?")
    hostport, _, database = rest.partition("/")
    if "@" in hostport or (userinfo and "@" in f"{database}?{query}"):
        raise ConfigurationError(_AT_HINT)
    host, port = _host_port(hostport)
    params = dict(parse_qsl(query, keep_blank_values=True))
    sslmode = params.get("sslmode")
    if sslmode is not None and sslmode not in SSLMODES:
        raise ConfigurationError(f"the database URL's sslmode must be one of "
                                 f"{', '.join(SSLMODES)}, not {sslmode[:20]!r}")
    return Dsn(host=host, port=port, username=username, password=password,
               database=unquote(database) or None, query=params)


def _check_text(text: str) -> None:
    """Refuse what the driver cannot send (it would fail later, as an unexpected error)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError("the database URL is not valid UTF-8 (check DATABASE_URL's "
                                 "encoding)") from None
    if "\x00" in text:
        raise ConfigurationError("the database URL holds a NUL character")


def _check_scheme(scheme: str) -> None:
    backend, _, driver = scheme.partition("+")
    if backend != "postgresql":
        raise ConfigurationError(
            f"the database URL must be a postgresql:// URL, not {backend[:20]}://")
    if driver not in ("", "psycopg2"):
        # psycopg2 is the driver this package ships (SQLAlchemy 2.1 would pick psycopg 3).
        raise ConfigurationError(
            f"the database URL names driver {driver[:20]!r}; this package uses "
            "psycopg2: write postgresql:// or postgresql+psycopg2://")


def _host_port(hostport: str) -> tuple[str | None, int | None]:
    if hostport.startswith("["):  # an IPv6 address
        host, _, after = hostport[1:].partition("]")
        port = after[1:] if after.startswith(":") else after
    else:
        host, _, port = hostport.partition(":")
    if port and not (port.isascii() and port.isdigit()):
        raise ConfigurationError("the database URL's port is not a number")
    if port and not 0 < int(port) < 65536:
        raise ConfigurationError(f"the database URL's port must be 1 to 65535, not {port[:6]}")
    return unquote(host) or None, int(port) if port else None
