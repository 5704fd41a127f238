"""The replica guard, against a real streaming standby built with pg_basebackup -R."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.cli import main
from alquimista_schema.connect.database import connect
from alquimista_schema.connect.local import DevDatabase, server_account
from alquimista_schema.errors import ReadOnlyReplica
from tests.support.helpers import Invoke

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def standby(pg_cluster: DevDatabase, pg_server: URL) -> Iterator[URL]:
    """Start a hot standby of the test server; yield its URL (same credentials)."""
    bindir = Path(str(pg_cluster.status().bindir))
    root = Path(tempfile.mkdtemp(prefix="alq-standby-"))
    root.chmod(0o755)
    data = root / "data"
    account = server_account()
    user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []} \
        if account else {}
    if account:
        os.chown(root, account.pw_uid, account.pw_gid)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"PATH": os.environ["PATH"], "PGPASSWORD": pg_server.password or "", "LC_ALL": "C"}
    subprocess.run([str(bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(pg_server.port),
                    "-U", str(pg_server.username), "-D", str(data), "-R", "-X", "stream"],
                   env=env, cwd=root, check=True, capture_output=True, **user)  # type: ignore[call-overload]
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{root}'"
    subprocess.run([str(bindir / "pg_ctl"), "start", "-D", str(data), "-l",
                    str(root / "log"), "-w", "-o", options], env=env, cwd=root, check=True,
                   capture_output=True, **user)  # type: ignore[call-overload]
    try:
        yield pg_server.set(port=port)
    finally:
        subprocess.run([str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate"],
                       env=env, cwd=root, capture_output=True, check=False, **user)  # type: ignore[call-overload]
        shutil.rmtree(root, ignore_errors=True)


def test_upgrade_on_a_standby_is_refused(standby: URL, pg_server: URL) -> None:
    with connect(pg_server) as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS replica_probe (x int)"))
        conn.commit()
    for _ in range(50):  # the standby replays the primary's change
        with connect(standby) as conn:
            if conn.execute(text("SELECT to_regclass('replica_probe')")).scalar():
                break
        time.sleep(0.1)
    with connect(standby) as conn:
        assert conn.execute(text("SELECT pg_is_in_recovery()")).scalar() is True
    with pytest.raises(ReadOnlyReplica, match="writer endpoint"):
        command.upgrade(standby, "head")
    result = CliRunner().invoke(main, ["upgrade", "--url", standby.render_as_string(
        hide_password=False)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: connected to a read-only replica")
    with connect(pg_server) as conn:
        conn.execute(text("DROP TABLE replica_probe"))
        conn.commit()


def test_the_lambda_answers_read_only_replica(standby: URL, invoke: Invoke,
                                              make_secret: Callable[..., str]) -> None:
    arn = make_secret({"username": standby.username, "password": standby.password,
                       "host": "localhost", "port": standby.port, "dbname": "postgres"})
    answer = invoke({}, secret=arn)
    assert answer["error_code"] == "READ_ONLY_REPLICA"
    assert "writer endpoint" in answer["error"]
