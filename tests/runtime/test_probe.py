"""The no-op fast path: one query, no Alembic, never fooled by a stale manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.connect.database import connect
from alquimista_schema.runtime import probe
from alquimista_schema.script import manifest
from tests.script.test_lint import BAD_REVISION
from tests.support.helpers import TLS, secret_for


def test_committed_manifest_matches_the_script_directory() -> None:
    """It can never go stale unnoticed: regenerate with command.write_manifest()."""
    assert manifest.manifest_path().read_text() == manifest.manifest(command.heads()[0])
    assert manifest.known_head() == "021"


def test_noop_at_head_is_one_query_on_a_reused_connection(head_url: URL) -> None:
    probe.drop()
    assert probe.probe(head_url).head == "021"
    [conn] = probe._cached.values()
    pid = conn.get_backend_pid()
    assert probe.probe(head_url).head == "021"
    assert probe._cached[probe._key(head_url)].get_backend_pid() == pid
    probe.drop()


def test_not_at_head_or_unversioned_takes_the_full_path(empty_url: URL) -> None:
    for at in (None, "017"):  # no version table, then below head
        if at is not None:
            command.upgrade(empty_url, at)
        answer = probe.probe(empty_url)
        assert answer.head is None
        assert answer.connection is not None  # handed over to the full path
        answer.connection.close()
    assert [a.revision for a in command.upgrade(empty_url, "head").applied] == ["018", "019", "020",
                                                                        "021"]
    assert probe.probe(empty_url).head == "021"
    probe.drop()


def test_a_revision_added_by_hand_is_never_hidden(head_url: URL,
                                                  scratch_scripts: Path) -> None:
    (scratch_scripts / "022_email_index.py").write_text(BAD_REVISION)
    recorded = scratch_scripts.parent / "manifest.json"
    assert json.loads(recorded.read_text())["head"] == "021"  # stale
    assert manifest.known_head() is None
    assert [a.revision for a in command.upgrade(head_url, "head").applied] == ["022"]
    probe.drop()


COLD = """
import json, sys, time
from alquimista_schema.aws.runner import Runner
answer = Runner.from_environment().handle({}, request_id="cold")
print(json.dumps({"answer": answer, "alembic": "alembic" in sys.modules,
                  "orm": "sqlalchemy.orm" in sys.modules}))
"""


def test_a_cold_noop_never_imports_alembic(head_url: URL, aws: Any, tls: TLS) -> None:
    with connect(head_url) as conn:
        conn.execute(text("CREATE ROLE cold_reader LOGIN PASSWORD 'cold-pass-1'"))
        conn.execute(text(f'GRANT ALL ON DATABASE "{head_url.database}" TO cold_reader'))
        conn.execute(text("GRANT SELECT ON alembic_version TO cold_reader"))
        conn.commit()
    secret = secret_for(head_url.set(username="cold_reader", password="cold-pass-1"))
    arn = aws.create_secret(Name="alquimista/cold", SecretString=json.dumps(secret))["ARN"]
    env = {**os.environ, "DB_SECRET_ARN": arn, "DB_SSLROOTCERT": str(tls.ca)}
    done = subprocess.run([sys.executable, "-c", COLD], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["answer"]["status"] == "noop", result
    assert result["answer"]["to_revision"] == "021"
    assert result["alembic"] is False
    assert result["orm"] is False
    with connect(head_url) as conn:
        conn.execute(text(f'REVOKE ALL ON DATABASE "{head_url.database}" FROM cold_reader'))
        conn.execute(text("REVOKE SELECT ON alembic_version FROM cold_reader"))
        conn.execute(text("DROP ROLE cold_reader"))
        conn.commit()


def test_importing_the_verbs_loads_neither_alembic_nor_the_orm() -> None:
    """command.upgrade answers the cold no-op itself: its import must stay light."""
    probe = ("import json, sys; import alquimista_schema.command; print(json.dumps("
             "[m for m in ('alembic', 'sqlalchemy', 'sqlalchemy.orm', 'boto3') "
             "if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout) == []
