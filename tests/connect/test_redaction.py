"""No error about a connection or a secret ever shows the password: every error path, driven.

The error catalogue is read from the code itself: every exception the package constructs
or raises in the modules that turn URLs, secrets and IAM settings into connections
(``connect/dsn.py``, ``connect/database.py``, ``connect/secrets.py``,
``connect/secretsmanager.py``, ``connect/iam.py``, ``connect/rds.py``), by its class
(``errors.py``'s, the module's own such as the extension's, or a builtin) and message. Each
path has a case in ``CASES`` that reaches it for real (a real server, moto's Secrets
Manager, a real socket), with a watched password in the URL or the secret; the message,
its repr and the whole chain of causes (what ``--traceback`` prints) are checked.
A new ``raise`` in those modules fails ``test_every_error_path_has_a_case`` until it has
a case, so no error path goes untested for redaction.

The doors are checked too: the CLI (``--url`` and ``--secret-arn``), the Lambda handler
(its secret) and plain ``alembic`` (``DATABASE_URL``), on their own output and answers
(the leak hook also scans every test's output).
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import json
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from alquimista_schema import errors
from alquimista_schema.cli import main
from alquimista_schema.connect import database, dsn, iam, rds, secrets, secretsmanager
from tests.support.helpers import (
    MIGRATOR,
    MIGRATOR_PASSWORD,
    TLS,
    Invoke,
    alembic,
    leaks,
)

MISSING = "alquimista/test/missing"  # a secret nobody made
PASSWORD = MIGRATOR_PASSWORD  # watched: raw and URL-encoded forms fail any test showing them
ENCODED = quote(PASSWORD, safe="")
FRAGMENT = "NEVER-LOG"  # its tail: a partly encoded or cut password shows this much


def shows_password(text: str) -> bool:
    return bool(leaks(text)) or FRAGMENT in text


# --- the catalogue: every exception constructed in the four modules -----------------------

MODULES: tuple[ModuleType, ...] = (dsn, database, secrets, secretsmanager, iam, rds)
"""The four named in issue 23, and the two that since make credentials (IAM tokens)."""


def _exception_names(module: ModuleType) -> set[str]:
    """The package's exception classes a module can name: errors.py's and its own."""
    return {name for name, value in vars(module).items()
            if inspect.isclass(value) and issubclass(value, BaseException)
            and value.__module__.startswith("alquimista_schema")}


def _template(call: ast.Call) -> str:
    """The message as written: literal text, and each interpolation as {its expression}."""
    if not call.args:
        return ""
    arg = call.args[0]
    if isinstance(arg, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else
                       f"{{{ast.unparse(v.value) if isinstance(v, ast.FormattedValue) else v}}}"
                       for v in arg.values)
    if isinstance(arg, ast.Constant):
        return str(arg.value)
    return ast.unparse(arg)


@dataclass(frozen=True)
class Site:
    """One place that constructs an exception: where, of which class, saying what."""

    key: str
    file: str
    first: int
    last: int


def catalogue() -> list[Site]:
    """Every exception constructed in MODULES: each ``raise X(...)`` whatever X is (a
    builtin, a class passed in, ``type(exc)``), and each call of one of the package's
    exception classes (``describe_connect_error`` returns them)."""
    sites: list[Site] = []
    for module in MODULES:
        path = str(Path(inspect.getfile(module)).resolve())
        names = _exception_names(module)
        short = module.__name__.rsplit(".", 1)[-1]
        tree = ast.parse(Path(path).read_text())
        raised = {id(n.exc) for n in ast.walk(tree)
                  if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call)}

        def visit(node: ast.AST, scope: list[str], *, short: str = short, path: str = path,
                  names: set[str] = names, raised: set[int] = raised) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    visit(child, [*scope, child.name])
                    continue
                if isinstance(child, ast.Call) and (id(child) in raised or (
                        isinstance(child.func, ast.Name) and child.func.id in names)):
                    key = f"{short}.{'.'.join(scope)}: {ast.unparse(child.func)}: " \
                          f"{_template(child)}"
                    sites.append(Site(key, path, child.lineno,
                                      child.end_lineno or child.lineno))
                visit(child, scope)

        visit(tree, [])
    return sites


SITES = catalogue()


# --- the cases: each error path reached for real --------------------------------------------

class Context:
    """What a case may need, started only when it asks (a fixture, a socket, an answer)."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request

    def fixture(self, name: str) -> Any:
        return self.request.getfixturevalue(name)

    @property
    def monkeypatch(self) -> pytest.MonkeyPatch:
        value: pytest.MonkeyPatch = self.fixture("monkeypatch")
        return value

    @property
    def server(self) -> URL:
        value: URL = self.fixture("pg_server")
        return value

    def url(self, *, user: str = MIGRATOR, host: str | None = None, port: int | None = None,
            database_: str = "postgres", query: str = "") -> str:
        """A URL with the watched password, percent-encoded as it must be."""
        return (f"postgresql://{user}:{ENCODED}@{host or self.server.host}:"
                f"{port or self.server.port}/{database_}{query}")

    @property
    def tls(self) -> TLS:
        value: TLS = self.fixture("tls")
        return value

    def closed_port(self) -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])

    def answering(self, raw: bytes | None) -> int:
        """A port where each request gets ``raw`` (None: silence), then the socket closes."""
        stack: contextlib.ExitStack = self.fixture("_closing")
        return stack.enter_context(_answering(raw))

    def cache(self, env: dict[str, str]) -> secrets.SecretCache:
        """A secret cache for a secret Secrets Manager does not have."""
        return secrets.SecretCache(MISSING, env=env)


@contextlib.contextmanager
def _answering(raw: bytes | None, seen: list[bytes] | None = None) -> Iterator[int]:
    """Serve ``raw`` to each request on a free port (None: say nothing); keep each request
    in ``seen``."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        held = []
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)
            with contextlib.suppress(OSError):
                conn.settimeout(2)
                request = conn.recv(65536)
                if seen is not None:
                    seen.append(request)
                if raw is not None:
                    conn.sendall(raw)
                    conn.close()
        for conn in held:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        done.set()
        thread.join(timeout=5)
        listener.close()


@pytest.fixture
def _closing() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as stack:
        yield stack


def http(status: str, body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode() + body


SECRET_BODY = json.dumps({"SecretString": json.dumps({"password": PASSWORD})}).encode()
EXT = secrets.EXTENSION_PORT_ENV
BOTH = " (the Parameters and Secrets extension did not serve it either: {})"
TOO_LATE = (re.escape(f"too little time left to fetch secret '{MISSING}' (") + r"\d\.\d" +
            re.escape("s before the deadline's margin); raise the function's timeout"))


def from_extension(ctx: Context, port: str, deadline: float = 1.5) -> object:
    """Ask through the extension at ``port``; Secrets Manager then has too little time."""
    return ctx.cache({EXT: port}).get(deadline=time.monotonic() + deadline)


def secret_fields(**fields: Any) -> dict[str, Any]:
    return {"username": MIGRATOR, "password": PASSWORD, "host": "db.internal",
            "dbname": "app", **fields}


def connect(url: str, **options: Any) -> None:
    with database.connect(url, **options):
        pass


def read_what_it_may_not(url: str) -> None:
    """Outside any revision, a query the role has no privilege for."""
    with database.connect(url) as conn:
        conn.exec_driver_sql("SELECT 1 FROM pg_authid")


def no_credentials(ctx: Context) -> None:
    """boto3 with no credentials anywhere (no environment, no files, no metadata)."""
    ctx.fixture("aws")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        ctx.monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        ctx.monkeypatch.setenv(name, "/nonexistent/aws")
    ctx.monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def moto(ctx: Context) -> Any:
    """A client of moto's Secrets Manager."""
    ctx.fixture("aws")
    return secretsmanager.client()


def missing_everywhere(ctx: Context) -> secrets.SecretCache:
    """The extension misconfigured, and Secrets Manager (moto's) without the secret."""
    ctx.fixture("aws")
    return ctx.cache({EXT: "ten"})


def no_region(ctx: Context, make: Callable[[], Any] = secretsmanager.client) -> Any:
    no_credentials(ctx)
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        ctx.monkeypatch.delenv(name, raising=False)
    return make()


def no_token(host: str, port: int, user: str) -> str:
    raise AssertionError("no token is signed before the settings are checked")


def without_credentials(ctx: Context) -> Any:
    no_credentials(ctx)
    return secretsmanager.client()


def nowhere(ctx: Context) -> Any:
    """A client of an endpoint where nothing listens."""
    ctx.fixture("aws")
    ctx.monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER",
                           f"http://127.0.0.1:{ctx.closed_port()}")
    return secretsmanager.client()


def expired_session(ctx: Context) -> Any:
    """A profile whose session has expired and whose refresh (credential_process) fails."""
    no_credentials(ctx)
    folder: Path = ctx.fixture("tmp_path")
    script = folder / "credentials.sh"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ -f "{folder}/used" ]; then echo "refresh refused" >&2; exit 3; fi\n'
        f'touch "{folder}/used"\n'
        """echo '{"Version": 1, "AccessKeyId": "a", "SecretAccessKey": "b", """
        """"SessionToken": "c", "Expiration": "2000-01-01T00:00:00Z"}'\n""")
    script.chmod(0o755)
    (folder / "config").write_text(f"[profile expired]\ncredential_process = {script}\n")
    ctx.monkeypatch.setenv("AWS_CONFIG_FILE", str(folder / "config"))
    ctx.monkeypatch.setenv("AWS_PROFILE", "expired")
    return secretsmanager.client()


@dataclass(frozen=True)
class Case:
    """One way to reach an error path: ``run`` raises ``kind`` whose message fullmatches
    ``message`` (a regex; ``{host}``/``{port}`` are the test server's)."""

    id: str
    site: str
    kind: type[BaseException]
    message: str
    run: Callable[[Context], object]


U = re.escape
REACH = ("check that the server is running and the host and port are right; from a Lambda, "
         "that the cluster's security group admits 5432 from the function's security group "
         "and the function's subnets route to the cluster")

CASES: list[Case] = [
    # connect/dsn.py: the one URL grammar; a malformed URL is never quoted
    Case("no scheme separator", "dsn.parse: ConfigurationError: MALFORMED",
         errors.ConfigurationError, U(dsn.MALFORMED),
         lambda ctx: dsn.parse(f"postgresql//{MIGRATOR}:{ENCODED}@h/d")),
    Case("scheme with odd characters", "dsn.parse: ConfigurationError: MALFORMED",
         errors.ConfigurationError, U(dsn.MALFORMED),
         lambda ctx: dsn.parse(f"postgres ql://{MIGRATOR}:{ENCODED}@h/d")),
    Case("an @ left unencoded", "dsn.parse: ConfigurationError: _AT_HINT",
         errors.ConfigurationError, U(dsn._AT_HINT), lambda ctx: dsn.parse(
             f"postgresql://{MIGRATOR}:{PASSWORD.replace('/', '%2F').replace('?', '%3F')}"
             "@db.internal/app")),
    Case("sslmode unknown", "dsn.parse: ConfigurationError: the database URL's sslmode",
         errors.ConfigurationError,
         U("the database URL's sslmode must be one of disable, allow, prefer, require, "
           "verify-ca, verify-full, not 'on'"),
         lambda ctx: dsn.parse(f"postgresql://{MIGRATOR}:{ENCODED}@h/d?sslmode=on")),
    Case("not UTF-8", "dsn._check_text: ConfigurationError: the database URL is not valid",
         errors.ConfigurationError,
         U("the database URL is not valid UTF-8 (check DATABASE_URL's encoding)"),
         lambda ctx: dsn.parse(f"postgresql://{MIGRATOR}:{ENCODED}\udcff@h/d")),
    Case("a NUL", "dsn._check_text: ConfigurationError: the database URL holds a NUL",
         errors.ConfigurationError, U("the database URL holds a NUL character"),
         lambda ctx: dsn.parse(f"postgresql://{MIGRATOR}:{ENCODED}\x00@h/d")),
    Case("another database", "dsn._check_scheme: ConfigurationError: the database URL must",
         errors.ConfigurationError, U("the database URL must be a postgresql:// URL, not "
                                      "mysql://"),
         lambda ctx: dsn.parse(f"mysql://{MIGRATOR}:{ENCODED}@h/d")),
    Case("another driver", "dsn._check_scheme: ConfigurationError: the database URL names",
         errors.ConfigurationError,
         U("the database URL names driver 'asyncpg'; this package uses psycopg2: write "
           "postgresql:// or postgresql+psycopg2://"),
         lambda ctx: dsn.parse(f"postgresql+asyncpg://{MIGRATOR}:{ENCODED}@h/d")),
    Case("the password unencoded", "dsn.parse: ConfigurationError: _AT_HINT",
         errors.ConfigurationError, U(dsn._AT_HINT),
         lambda ctx: dsn.parse(f"postgresql://{MIGRATOR}:{PASSWORD}@db.internal/app")),
    Case("an unencoded @ then ?", "dsn.parse: ConfigurationError: _AT_HINT",
         errors.ConfigurationError, U(dsn._AT_HINT),
         lambda ctx: dsn.parse(f"postgresql://{MIGRATOR}:Sup3r@Secret?Pw1@db.internal/app")),
    Case("an unencoded @ then /", "dsn.parse: ConfigurationError: _AT_HINT",
         errors.ConfigurationError, U(dsn._AT_HINT),
         lambda ctx: dsn.parse(f"postgresql://{MIGRATOR}:Sup3r@Secret/Pw1@db.internal/app")),
    Case("port out of range", "dsn._host_port: ConfigurationError: the database URL's port must",
         errors.ConfigurationError, U("the database URL's port must be 1 to 65535, not 65536"),
         lambda ctx: database.parse_url(f"postgresql://{MIGRATOR}:{ENCODED}@h:65536/d")),
    Case("port not a number", "dsn._host_port: ConfigurationError: the database URL's port is",
         errors.ConfigurationError, U("the database URL's port is not a number"),
         lambda ctx: database.parse_url(f"postgresql://{MIGRATOR}:{ENCODED}@h:5x/d")),
    Case("port 0", "dsn._host_port: ConfigurationError: the database URL's port must",
         errors.ConfigurationError, U("the database URL's port must be 1 to 65535, not 0"),
         lambda ctx: database.parse_url(f"postgresql://{MIGRATOR}:{ENCODED}@h:0/d")),

    # connect/database.py: what the server (or the network) said, translated
    Case("credentials refused", "database.describe_connect_error: AuthenticationFailed: ",
         errors.AuthenticationFailed,
         U("PostgreSQL at ") + "{host}:{port}" + U(
             " refused the credentials of user 'nobody_here': check the user name and "
             "password (or the secret they come from)"),
         lambda ctx: connect(ctx.url(user="nobody_here"))),
    Case("permission denied outside a revision", "database.connect: refused: exc",
         errors.PermissionDenied,
         U("PostgreSQL at ") + "{host}:{port}" + U(
             f" refused user '{MIGRATOR}': permission denied for table pg_authid ("
             + database._REFUSALS["42501"][1] + ")"),
         lambda ctx: read_what_it_may_not(ctx.url())),
    Case("database does not exist",
         "database.describe_connect_error: ConfigurationError: database",
         errors.ConfigurationError,
         U("database 'no_such_db' does not exist on ") + "{host}:{port}" +
         U(": create it, or fix the URL"),
         lambda ctx: connect(ctx.url(database_="no_such_db"))),
    Case("TLS refused", "database.describe_connect_error: DatabaseUnreachable: TLS with",
         errors.DatabaseUnreachable,
         U("TLS with PostgreSQL at ") + "{host}:{port}" + r" failed \(.*certificate verify "
         r"failed.*\): " + U("for Aurora, set DB_SSLROOTCERT to the RDS CA bundle; the "
                             "server must offer TLS"),
         lambda ctx: connect(ctx.url(query=f"?sslmode=verify-full&sslrootcert="
                                           f"{ctx.tls.other_ca}"))),
    *[Case(f"unreachable: {reason}", "database.describe_connect_error: DatabaseUnreachable: "
           "cannot reach", errors.DatabaseUnreachable,
           U("cannot reach PostgreSQL at ") + where + f" \\({U(reason)}\\): " + U(REACH), run)
      for reason, where, run in [
          ("connection refused", r"127\.0\.0\.1:\d+",
           lambda ctx: connect(ctx.url(host="127.0.0.1", port=ctx.closed_port()))),
          ("no answer before the connect timeout", r"127\.0\.0\.1:\d+",
           lambda ctx: connect(ctx.url(host="127.0.0.1", port=ctx.fixture("blackhole")[1]),
                               connect_timeout=2)),
          ("the host name does not resolve", U("no-such-host.invalid:5432"),
           lambda ctx: connect(f"postgresql://{MIGRATOR}:{ENCODED}@no-such-host.invalid/d"))]],
    Case("an option libpq does not know",
         "database.describe_connect_error: ConfigurationError: libpq refused",
         errors.ConfigurationError,
         U("libpq refused the database URL's options (unknown option 'no_such_option'): each "
           "key after '?' must be a libpq connection parameter (sslmode, sslrootcert, "
           "connect_timeout, options, ...); fix or remove it"),
         lambda ctx: connect(ctx.url(query="?no_such_option=1"))),
    Case("no time left before the deadline", "database._attempt_timeout: DatabaseUnreachable",
         errors.DatabaseUnreachable,
         U("no time left to connect to PostgreSQL at ") + "{host}:{port}" +
         U(" within the budget (or before the deadline)"),
         lambda ctx: connect(ctx.url(), deadline=time.monotonic() + 1)),
    Case("unreachable after retries", "database._open: DatabaseUnreachable",
         errors.DatabaseUnreachable,
         r"cannot reach PostgreSQL at 127\.0\.0\.1:\d+ \(connection refused\): " + U(REACH) +
         U(" (after 2 attempts over 1s)"),
         lambda ctx: connect(ctx.url(host="127.0.0.1", port=ctx.closed_port()), budget=4)),

    # connect/secrets.py: the secret's value is never quoted
    Case("binary secret", "secrets.parse_secret: SecretUnavailable: secret {secret_id} has no",
         errors.SecretUnavailable,
         U("secret 'alquimista/db' has no SecretString (binary secrets are not supported)"),
         lambda ctx: secrets.parse_secret("alquimista/db",
                                          {"SecretBinary": PASSWORD.encode()})),
    Case("not JSON", "secrets.parse_secret: SecretUnavailable: secret {secret_id} is not JSON",
         errors.SecretUnavailable,
         U('secret \'alquimista/db\' is not JSON; expected the RDS format {"username", '
           '"password", "host", "port", "dbname"}'),
         lambda ctx: secrets.parse_secret("alquimista/db", {
             "SecretString": f'{{"username": "{MIGRATOR}", "password": "{PASSWORD}", '})),
    Case("not a JSON object", "secrets.parse_secret: SecretUnavailable: secret {secret_id} is "
         "not a JSON object", errors.SecretUnavailable,
         U("secret 'alquimista/db' is not a JSON object"),
         lambda ctx: secrets.parse_secret("alquimista/db",
                                          {"SecretString": json.dumps([PASSWORD])})),
    Case("fields missing", "secrets.url_from_secret: SecretUnavailable: {name} lacks",
         errors.SecretUnavailable,
         U("the secret lacks username, host (or DB_HOST), dbname (or DB_NAME)"),
         lambda ctx: secrets.url_from_secret({"password": PASSWORD}, {})),
    Case("a NUL in the password", "secrets.url_from_secret: SecretUnavailable: {name} has a NUL",
         errors.SecretUnavailable, U("the secret has a NUL character in its password"),
         lambda ctx: secrets.url_from_secret(secret_fields(password=PASSWORD + "\x00"), {})),
    Case("the password as the engine", "secrets.url_from_secret: SecretUnavailable: {name} is "
         "for engine", errors.SecretUnavailable,
         U("the secret is for engine that is not an engine name, not PostgreSQL"),
         lambda ctx: secrets.url_from_secret(secret_fields(engine=PASSWORD), {})),
    Case("the password as the port", "secrets.url_from_secret: SecretUnavailable: {name} has a "
         "port that", errors.SecretUnavailable, U("the secret has a port that is not a number"),
         lambda ctx: secrets.url_from_secret(secret_fields(port=PASSWORD), {})),
    Case("port 0 in the secret", "secrets.url_from_secret: SecretUnavailable: {name} has a "
         "port outside", errors.SecretUnavailable, U("the secret has a port outside 1 to 65535"),
         lambda ctx: secrets.url_from_secret(secret_fields(port=0), {})),
    Case("the password in the host", "secrets.url_from_secret: SecretUnavailable: {name} has a "
         "host", errors.SecretUnavailable, U("the secret has a host that is not a host name"),
         lambda ctx: secrets.url_from_secret(
             secret_fields(host=f"{MIGRATOR}:{PASSWORD}@db.internal"), {})),
    Case("too little time to fetch", "secrets.SecretCache._client_for: DeadlineExceeded",
         errors.DeadlineExceeded, TOO_LATE,
         lambda ctx: ctx.cache({}).get(deadline=time.monotonic() + 1)),
    Case("neither the extension nor Secrets Manager", "secrets.SecretCache._fallback: ",
         errors.SecretUnavailable,
         U(f"cannot read secret '{MISSING}': no such secret: check its name or ARN and the "
           "region") + U(BOTH.format(f"{EXT}='ten' is not a port")),
         lambda ctx: missing_everywhere(ctx).get()),
    # the Parameters and Secrets extension: why it did not serve, never what it sent
    *[Case(f"extension: {why}", f"secrets.{function}: _ExtensionUnavailable: {template}",
           errors.DeadlineExceeded,
           TOO_LATE + U(BOTH.format(said)).replace(U("{port}"), r"\d+"), run)
      for why, function, template, said, run in [
          ("port out of range", "fetch_from_extension", "{EXTENSION_PORT_ENV}={port} is not",
           f"{EXT}=70000 is not a TCP port", lambda ctx: from_extension(ctx, "70000")),
          ("port not a number", "SecretCache._from_extension", "{EXTENSION_PORT_ENV}=",
           f"{EXT}='ten' is not a port", lambda ctx: from_extension(ctx, "ten")),
          ("no time left", "SecretCache._from_extension", "no time left",
           "no time left to ask it before the deadline",
           lambda ctx: from_extension(ctx, "2773", deadline=0.05)),
          ("silent", "fetch_from_extension", "no complete answer",
           "no complete answer within 0.8s",
           lambda ctx: from_extension(ctx, str(ctx.answering(None)), deadline=1.6)),
          ("nothing listens", "fetch_from_extension", "nothing listens",
           "nothing listens on 127.0.0.1:{port}",
           lambda ctx: from_extension(ctx, str(ctx.closed_port()))),
          ("not HTTP", "fetch_from_extension", "its answer could not be read",
           "its answer could not be read (BadStatusLine)",
           lambda ctx: from_extension(ctx, str(ctx.answering(
               f"{PASSWORD}\r\n\r\n".encode())))),
          ("not JSON", "fetch_from_extension", "its answer could not be read",
           "its answer could not be read (JSONDecodeError)",
           lambda ctx: from_extension(ctx, str(ctx.answering(http(
               "200 OK", f'{{"SecretString": "{PASSWORD}'.encode(), "Connection: close"))))),
          ("not an object", "fetch_from_extension", "its answer is not a JSON object",
           "its answer is not a JSON object",
           lambda ctx: from_extension(ctx, str(ctx.answering(http(
               "200 OK", json.dumps([PASSWORD]).encode(), "Connection: close"))))),
          ("refused", "_read_answer", "it answered HTTP",
           "it answered HTTP 403 (not the secret)",
           lambda ctx: from_extension(ctx, str(ctx.answering(http(
               "403 Forbidden", SECRET_BODY, "Connection: close"))))),
          ("redirected", "_read_answer", "it answered HTTP",
           "it answered HTTP 302 (a redirect, which is never followed)",
           lambda ctx: from_extension(ctx, str(ctx.answering(http(
               "302 Found", SECRET_BODY, f"Location: http://x/?p={ENCODED}",
               "Connection: close"))))),
          ("announced too long", "_read_answer", "its answer would be",
           "its answer would be 2,000,000 bytes, over the 1,048,576 a secret can take",
           lambda ctx: from_extension(ctx, str(ctx.answering(http(
               "200 OK", SECRET_BODY, "Content-Length: 2000000", "Connection: close"))))),
          ("too long", "_read_answer", "its answer went past",
           "its answer went past the 1,048,576 bytes a secret can take",
           lambda ctx: from_extension(ctx, str(ctx.answering(http(
               "200 OK", SECRET_BODY + b" " * secrets.EXTENSION_MAX_BYTES,
               "Connection: close")))))]],

    Case("the extension's deadline passed", "secrets._loopback_connection.DeadlineSocket."
         "time_left: TimeoutError", TimeoutError, U("the extension's deadline passed"),
         lambda ctx: secrets._loopback_connection(ctx.closed_port(),
                                                  time.monotonic() - 1).connect()),

    # connect/iam.py and connect/rds.py: a signed token stands for the password
    Case("IAM without its settings", "iam.url_from_env: ConfigurationError: DB_AUTH=iam",
         errors.ConfigurationError,
         U("DB_AUTH=iam needs DB_NAME, DB_USER, DB_SSLROOTCERT in the environment (IAM "
           "tokens are accepted over verify-full TLS only)"),
         lambda ctx: iam.url_from_env({"DB_HOST": "db.internal", "DB_PASSWORD": PASSWORD},
                                      no_token)),
    Case("IAM with the password as the port", "iam.url_from_env: ConfigurationError: DB_PORT",
         errors.ConfigurationError, U("DB_PORT must be a port number"),
         lambda ctx: iam.url_from_env({"DB_HOST": "h", "DB_NAME": "d", "DB_USER": "u",
                                       "DB_SSLROOTCERT": "/ca.pem", "DB_PORT": PASSWORD},
                                      no_token)),
    Case("RDS without a region", "rds.client: ConfigurationError: no AWS region for RDS",
         errors.ConfigurationError,
         U("no AWS region for RDS: set AWS_REGION (the Lambda runtime sets it)"),
         lambda ctx: no_region(ctx, rds.client)),
    Case("RDS credentials that cannot load", "rds.client: failure: ",
         errors.AuthenticationFailed,
         U("the AWS credentials could not be loaded for RDS (CredentialRetrievalError: Error "
           "when retrieving credentials from custom-process: )"),
         lambda ctx: failing_client(ctx, lambda: rds.client(
             failure=errors.AuthenticationFailed))),

    # connect/secretsmanager.py: what boto3 said, translated
    Case("no region", "secretsmanager.client: ConfigurationError: no AWS region",
         errors.ConfigurationError,
         U("no AWS region: set AWS_REGION (the Lambda runtime sets it), or give the secret's "
           "full ARN, which names its region"),
         lambda ctx: no_region(ctx)),
    Case("credentials that cannot load", "secretsmanager.client: SecretUnavailable: the AWS "
         "credentials could not be loaded", errors.SecretUnavailable,
         U("the AWS credentials could not be loaded (CredentialRetrievalError: Error when "
           "retrieving credentials from custom-process: )"),
         lambda ctx: failing_client(ctx)),
    Case("no such secret", "secretsmanager.get_secret_value: SecretUnavailable: cannot read "
         "secret {secret_id}: {hint}", errors.SecretUnavailable,
         U(f"cannot read secret '{MISSING}': no such secret: check its name or ARN and the "
           "region"),
         lambda ctx: secretsmanager.get_secret_value(MISSING, moto(ctx))),
    Case("no credentials", "secretsmanager.get_secret_value: SecretUnavailable: cannot read "
         "secret {secret_id}: {NO_CREDENTIALS}", errors.SecretUnavailable,
         U(f"cannot read secret 'alquimista/db': {secretsmanager.NO_CREDENTIALS}"),
         lambda ctx: secretsmanager.get_secret_value("alquimista/db",
                                                     without_credentials(ctx))),
    Case("credentials that cannot be refreshed", "secretsmanager.get_secret_value: "
         "SecretUnavailable: cannot read secret {secret_id}: the AWS credentials",
         errors.SecretUnavailable,
         U("cannot read secret 'alquimista/db': the AWS credentials could not be loaded "
           "(CredentialRetrievalError: Error when retrieving credentials from custom-process: "
           "refresh refused\n)"),
         lambda ctx: secretsmanager.get_secret_value("alquimista/db", expired_session(ctx))),
    Case("Secrets Manager unreachable", "secretsmanager.get_secret_value: SecretUnavailable: "
         "cannot reach", errors.SecretUnavailable,
         U("cannot reach Secrets Manager for secret 'alquimista/db' "
           "(EndpointConnectionError): functions in isolated subnets need a Secrets Manager "
           "VPC endpoint whose security group admits HTTPS (443) from the function's "
           "security group"),
         lambda ctx: secretsmanager.get_secret_value("alquimista/db", nowhere(ctx))),
    Case("botocore refuses the call", "secretsmanager.get_secret_value: SecretUnavailable: "
         "cannot read secret {secret_id}: {type(exc)", errors.SecretUnavailable,
         U("cannot read secret '': ParamValidationError: Parameter validation failed:\n"
           "Invalid length for parameter SecretId, value: 0, valid min length: 1"),
         lambda ctx: secretsmanager.get_secret_value("", moto(ctx))),
]


def site_of(case: Case) -> str:
    """The one catalogue entry a case's ``site`` (a prefix of its key) names."""
    found = [s.key for s in SITES if s.key.startswith(case.site)]
    assert len(found) == 1, (case.site, found)
    return found[0]


def expected(case: Case, ctx: Context) -> str:
    server = ctx.server if "{host}" in case.message or "{port}" in case.message else None
    pattern = case.message
    if server is not None:
        pattern = pattern.replace("{host}", re.escape(str(server.host))).replace(
            "{port}", str(server.port))
    return pattern.replace("{port}", r"\d+")


def chain_text(exc: BaseException) -> str:
    """Everything a traceback of ``exc`` shows: each cause's message included."""
    return "".join(traceback.format_exception(exc))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_no_error_message_shows_the_password(case: Case, request: pytest.FixtureRequest,
                                             caplog: pytest.LogCaptureFixture) -> None:
    ctx = Context(request)
    with pytest.raises(case.kind) as caught:
        case.run(ctx)
    shown = {"message": str(caught.value), "repr": repr(caught.value),
             "chain": chain_text(caught.value), "log": caplog.text}
    assert [where for where, text in shown.items() if shows_password(text)] == []
    assert re.fullmatch(expected(case, ctx), str(caught.value), re.DOTALL), str(caught.value)


# --- every error path has a case, and each case reaches its path ---------------------------

def test_the_catalogue_reads_every_module_and_every_kind() -> None:
    """The scan itself works: it finds each module's paths, of each kind these raise."""
    assert {s.key.split(".", 1)[0] for s in SITES} == {m.__name__.rsplit(".", 1)[-1]
                                                      for m in MODULES}
    kinds = {re.match(r"[^:]+: (\w+)", s.key)[1] for s in SITES}  # type: ignore[index]
    assert kinds >= {"ConfigurationError", "AuthenticationFailed", "DatabaseUnreachable",
                     "SecretUnavailable", "DeadlineExceeded", "_ExtensionUnavailable"}


@pytest.mark.parametrize("site", sorted({s.key for s in SITES}))
def test_every_error_path_has_a_case(site: str) -> None:
    assert any(site.startswith(c.site) for c in CASES), (
        f"no case reaches {site}: add one to CASES (tests/connect/test_redaction.py) that "
        "drives it with the watched password in the URL or the secret")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_case_names_one_error_path(case: Case) -> None:
    site_of(case)


@contextlib.contextmanager
def constructions(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Record the catalogue's sites that construct an exception while the block runs."""
    made: set[str] = set()
    errors_file = str(Path(inspect.getfile(errors)).resolve())

    def record(self: BaseException, *args: Any) -> None:
        BaseException.__init__(self, *args)
        frame = sys._getframe(1)
        while frame.f_back is not None and \
                str(Path(frame.f_code.co_filename).resolve()) == errors_file:
            frame = frame.f_back  # a subclass's own __init__ in errors.py
        where = str(Path(frame.f_code.co_filename).resolve())
        made.update(s.key for s in SITES
                    if s.file == where and s.first <= frame.f_lineno <= s.last)

    monkeypatch.setattr(errors.SchemaError, "__init__", record)
    monkeypatch.setattr(secrets._ExtensionUnavailable, "__init__", record)
    yield made


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_case_reaches_its_error_path(case: Case, request: pytest.FixtureRequest,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with constructions(monkeypatch) as made, pytest.raises(case.kind) as caught:
        case.run(Context(request))
    made |= raised_at(caught.value)  # a builtin (TimeoutError) is not recorded as made
    assert site_of(case) in made, sorted(made)


def raised_at(exc: BaseException) -> set[str]:
    """The catalogue's sites where ``exc`` was raised (its innermost frame)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return set()
    where = str(Path(tb.tb_frame.f_code.co_filename).resolve())
    return {s.key for s in SITES if s.file == where and s.first <= tb.tb_lineno <= s.last}


# --- at the doors: what each prints or answers -------------------------------------------

# (a URL with the watched password, what the door must say)
URLS: dict[str, tuple[Callable[[Context], str], str]] = {
    "credentials refused": (lambda ctx: ctx.url(user="nobody_here"),
                            "refused the credentials of user 'nobody_here'"),
    "database does not exist": (lambda ctx: ctx.url(database_="no_such_db"),
                                "database 'no_such_db' does not exist on"),
    "TLS refused": (lambda ctx: ctx.url(query=f"?sslmode=verify-full&sslrootcert="
                                              f"{ctx.tls.other_ca}"), "TLS with PostgreSQL at"),
    "connection refused": (lambda ctx: ctx.url(host="127.0.0.1", port=ctx.closed_port()),
                           "(connection refused)"),
    "an @ left unencoded": (lambda ctx: ctx.url().replace(ENCODED, PASSWORD.replace(
        "/", "%2F").replace("?", "%3F")), "must be percent-encoded"),
    "the password unencoded": (lambda ctx: ctx.url().replace(ENCODED, PASSWORD),
                               "must be percent-encoded"),
    "sslmode unknown": (lambda ctx: ctx.url(query="?sslmode=on"), "sslmode must be one of"),
    "another driver": (lambda ctx: ctx.url().replace("postgresql:", "postgresql+asyncpg:"),
                       "names driver 'asyncpg'"),
}


def cli_shows(*args: str) -> str:
    """``upgrade`` through the CLI, plainly and with --traceback: everything it shows."""
    shown = []
    for extra in ([], ["--traceback"]):
        result = CliRunner().invoke(main, [*extra, "upgrade", *args])
        assert result.exit_code == 1, "the CLI did not fail"
        shown.append(result.output)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            shown.append(chain_text(result.exception))
    return "\n".join(shown)


def cli_url(ctx: Context, url: str) -> str:
    return cli_shows("--url", url)


def alembic_url(ctx: Context, url: str) -> str:
    """Plain alembic, in its own process, the URL given with -x url=."""
    done = alembic("-x", f"url={url}", "upgrade", "head")
    assert done.returncode != 0, done.stdout
    return done.stdout + done.stderr


@pytest.mark.parametrize("door", [cli_url, alembic_url], ids=["cli", "alembic"])
@pytest.mark.parametrize("case", URLS.values(), ids=list(URLS))
def test_no_door_shows_the_password_of_a_url(
        case: tuple[Callable[[Context], str], str], door: Callable[[Context, str], str],
        request: pytest.FixtureRequest, secret_free_env: None) -> None:
    ctx = Context(request)
    make, says = case
    shown = door(ctx, make(ctx))
    leaked = shows_password(shown)  # (not echoed: a failure report is output too)
    assert not leaked, "the password is shown"
    assert says in shown


# (the secret, as stored, with the watched password; extra environment; what is said)
SECRETS: dict[str, tuple[Callable[[Context], dict[str, Any] | str], dict[str, str], str]] = {
    "credentials refused": (lambda ctx: secret_fields(
        username="nobody_here", host="localhost", port=ctx.server.port, dbname="postgres"),
        {}, "refused the credentials of user 'nobody_here'"),
    "database does not exist": (lambda ctx: secret_fields(
        host="localhost", port=ctx.server.port, dbname="no_such_db"), {},
        "database 'no_such_db' does not exist on"),
    "TLS refused": (lambda ctx: secret_fields(host="localhost", port=ctx.server.port,
                                              dbname="postgres"),
                    {"DB_SSLROOTCERT": "other"}, "TLS with PostgreSQL at"),
    "connection refused": (lambda ctx: secret_fields(host="127.0.0.1", port=ctx.closed_port()),
                           {}, "(connection refused)"),
    "not JSON": (lambda ctx: f'{{"username": "{MIGRATOR}", "password": "{PASSWORD}"', {},
                 "is not JSON; expected the RDS format"),
    "not an object": (lambda ctx: json.dumps([MIGRATOR, PASSWORD]), {},
                      "is not a JSON object"),
    "fields missing": (lambda ctx: {"password": PASSWORD}, {},
                       "lacks username, host (or DB_HOST), dbname (or DB_NAME)"),
    "a NUL in the password": (lambda ctx: secret_fields(password=PASSWORD + "\x00"), {},
                              "has a NUL character in its password"),
    "the password as the engine": (lambda ctx: secret_fields(engine=PASSWORD), {},
                                   "is for engine that is not an engine name"),
    "the password as the port": (lambda ctx: secret_fields(port=PASSWORD), {},
                                 "has a port that is not a number"),
    "the password in the host": (lambda ctx: secret_fields(
        host=f"{MIGRATOR}:{PASSWORD}@db.internal"), {}, "has a host that is not a host name"),
}


def stored(ctx: Context, value: dict[str, Any] | str) -> str:
    make: Callable[..., str] = ctx.fixture("make_secret")
    return make(value)


def environment(ctx: Context, extra: dict[str, str]) -> dict[str, str]:
    env = {"CONNECT_BUDGET_SECONDS": "0", **extra}  # one attempt: a refused port is final
    if env.get("DB_SSLROOTCERT") == "other":
        env["DB_SSLROOTCERT"] = str(ctx.tls.other_ca)
    return env


def lambda_secret(ctx: Context, arn: str, env: dict[str, str]) -> str:
    """The handler: its answer, and everything it logged."""
    invoke: Invoke = ctx.fixture("invoke")
    capsys: pytest.CaptureFixture[str] = ctx.fixture("capsys")
    answer = invoke({"action": "upgrade"}, secret=arn, env=environment(ctx, env))
    assert answer["status"] == "error", answer
    out, err = capsys.readouterr()
    return "\n".join([answer["error"], json.dumps(answer), out, err])


def cli_secret(ctx: Context, arn: str, env: dict[str, str]) -> str:
    """The CLI with --secret-arn, plainly and with --traceback."""
    ctx.fixture("invoke")  # the same environment as the handler's (moto, the CA bundle)
    for key, value in environment(ctx, env).items():
        ctx.monkeypatch.setenv(key, value)
    return cli_shows("--secret-arn", arn)


@pytest.mark.parametrize("door", [lambda_secret, cli_secret], ids=["lambda", "cli"])
@pytest.mark.parametrize("case", SECRETS.values(), ids=list(SECRETS))
def test_no_door_shows_the_password_of_a_secret(
        case: tuple[Callable[[Context], dict[str, Any] | str], dict[str, str], str],
        door: Callable[[Context, str, dict[str, str]], str],
        request: pytest.FixtureRequest, secret_free_env: None) -> None:
    ctx = Context(request)
    make, env, says = case
    shown = door(ctx, stored(ctx, make(ctx)), env)
    leaked = shows_password(shown)  # (not echoed: a failure report is output too)
    assert not leaked, "the password is shown"
    assert says in shown


# --- found while driving every path: credentials that fail before the first call --------------

def profile_missing(ctx: Context) -> None:
    no_credentials(ctx)
    ctx.monkeypatch.setenv("AWS_PROFILE", "no-such-profile")


def process_failing(ctx: Context) -> None:
    no_credentials(ctx)
    folder: Path = ctx.fixture("tmp_path")
    (folder / "config").write_text("[profile failing]\ncredential_process = /bin/false\n")
    ctx.monkeypatch.setenv("AWS_CONFIG_FILE", str(folder / "config"))
    ctx.monkeypatch.setenv("AWS_PROFILE", "failing")


def failing_client(ctx: Context, make: Callable[[], Any] = secretsmanager.client) -> Any:
    process_failing(ctx)
    return make()


@pytest.mark.parametrize("broken", [
    pytest.param(profile_missing, id="missing profile"),
    pytest.param(process_failing, id="credential_process fails"),
])
def test_credentials_that_cannot_load_are_an_error_the_message_explains(
        broken: Callable[[Context], None], request: pytest.FixtureRequest,
        secret_free_env: None) -> None:
    """Found by driving every path: a credential error raised while the client is made."""
    ctx = Context(request)
    broken(ctx)
    result = CliRunner().invoke(main, ["current", "--secret-arn", MISSING])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ")
    assert "unexpected" not in result.stderr, result.stderr
    assert "credentials" in result.stderr or "profile" in result.stderr, result.stderr
