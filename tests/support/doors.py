"""The three doors, as users go through them: the CLI, the Lambda handler, plain alembic.

Each runs in a process of its own, the way it runs for real, over a scratch copy of the
script directory (``corpus_scripts``: the package's revisions plus tests/corpus). A
test that proves a behaviour takes the ``door`` fixture, parametrized by name, so every
door gets the same case and none depends on what an earlier test left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from tests.support.helpers import ROOT, TLS, full, secret_for

DOORS = ("cli", "lambda", "alembic")
CORPUS = ROOT / "tests" / "corpus" / "versions"

# Runs the package's CLI or the Lambda handler over the scratch script directory.
CHILD = """
import json, sys, types
from pathlib import Path
from alquimista_schema.script import directory
folder = Path(sys.argv[1])
directory.SCRIPT_LOCATION, directory.VERSIONS_LOCATION = folder, folder / "versions"
if sys.argv[2] == "cli":
    from alquimista_schema.cli import main
    main(sys.argv[3:])
else:
    from lambda_entry.handler import handler
    answer = handler(json.loads(sys.argv[3]), types.SimpleNamespace(
        aws_request_id=sys.argv[4], get_remaining_time_in_millis=lambda: 600_000))
    print("ANSWER " + json.dumps(answer))
    sys.exit(1 if answer["status"] == "error" else 0)
"""


@dataclass
class Done:
    """What a door said: its exit status, its output, and (the Lambda's) answer."""

    ok: bool
    output: str
    answer: dict[str, Any] = field(default_factory=dict)
    status: int = 0
    """The process's exit status."""


@dataclass
class Door:
    """One way in. ``run`` moves a database, the way that door's users would."""

    name: str
    folder: Path
    """The scratch script directory (its ``versions/`` holds the revisions)."""
    make_secret: Callable[..., str]
    tls: TLS

    def run(self, action: str, url: URL, target: str, *, confirm: str | None = None,
            accept_checksums: bool = False, env: dict[str, str] | None = None,
            timeout: float = 180) -> Done:
        """``env``: the process environment's additions (ENVIRONMENT=prod, ...)."""
        command, environ = _COMMANDS[self.name](self, action, url, target, confirm,
                                                accept_checksums)
        done = subprocess.run(command, cwd=ROOT, env={**environ, **(env or {})},
                              capture_output=True, text=True, timeout=timeout, check=False)
        output = done.stdout + done.stderr
        answer: dict[str, Any] = next((json.loads(line[7:]) for line in done.stdout.splitlines()
                                       if line.startswith("ANSWER ")), {})
        return Done(done.returncode == 0, output, answer, done.returncode)

    def popen(self, action: str, url: URL, target: str, *,
              env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start ``run`` without waiting (for concurrent runners, or to signal it)."""
        command, environ = _COMMANDS[self.name](self, action, url, target, None, False)
        return subprocess.Popen(command, cwd=ROOT, env={**environ, **(env or {})},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return {**env, **extra, "ALQUIMISTA_DEVDB": "off"}


def _cli(door: Door, action: str, url: URL, target: str, confirm: str | None,
         accept: bool) -> tuple[list[str], dict[str, str]]:
    args = [action, target, "--url", full(url), *(["--confirm", confirm] if confirm else []),
            *(["--accept-checksums"] if accept else [])]
    return [sys.executable, "-c", CHILD, str(door.folder), "cli", *args], _env()


def _lambda(door: Door, action: str, url: URL, target: str, confirm: str | None,
            accept: bool) -> tuple[list[str], dict[str, str]]:
    event: dict[str, Any] = {"action": action, "target": target,
                             **({"accept_checksums": True} if accept else {})}
    if action == "downgrade":
        event.update({"allow_downgrade": True, **({"confirm": confirm} if confirm else {})})
    env = _env(DB_SECRET_ARN=door.make_secret(secret_for(url)),
               DB_SSLROOTCERT=str(door.tls.ca))
    return [sys.executable, "-c", CHILD, str(door.folder), "lambda", json.dumps(event),
            f"req-{uuid.uuid4().hex[:8]}"], env


def _alembic(door: Door, action: str, url: URL, target: str, confirm: str | None,
             accept: bool) -> tuple[list[str], dict[str, str]]:
    xs = [*(["-x", f"confirm={confirm}"] if confirm else []),
          *(["-x", "accept_checksums=true"] if accept else [])]
    return ([sys.executable, "-c", "from alembic.config import main; main()", "-c",
             str(door.folder.parent / "alembic.ini"), *xs, action, target],
            _env(DATABASE_URL=full(url)))


_COMMANDS = {"cli": _cli, "lambda": _lambda, "alembic": _alembic}


def alembic_ini(folder: Path) -> Path:
    """The repository's alembic.ini, pointed at the scratch versions folder."""
    text = (ROOT / "alembic.ini").read_text()
    for old, new in (
            ("version_locations = %(here)s/src/alquimista_schema/migrations/versions",
             f"version_locations = {folder / 'versions'}"),
            ("script_location = %(here)s/alembic", f"script_location = {ROOT / 'alembic'}"),
            ("prepend_sys_path = %(here)s/src", f"prepend_sys_path = {ROOT / 'src'}"),
            ("hooks = manifest", "hooks =")):
        assert old in text, old
        text = text.replace(old, new)
    ini = folder.parent / "alembic.ini"
    ini.write_text(text)
    return ini


@pytest.fixture
def corpus_scripts(scratch_scripts: Path) -> Path:
    """The scratch script directory with the corpus chained after the package's head."""
    from tests.support.revisions import HEAD

    for path in sorted(CORPUS.glob("c*.py")):
        shutil.copy(path, scratch_scripts / path.name)
    first = scratch_scripts / "c01_corpus_customers_orders.py"  # revises "package_head":
    first.write_text(first.read_text().replace('= "package_head"', f'= "{HEAD}"', 1))
    alembic_ini(scratch_scripts.parent)
    return scratch_scripts.parent


@pytest.fixture(params=DOORS)
def door(request: pytest.FixtureRequest, corpus_scripts: Path, make_secret: Callable[..., str],
         tls: TLS) -> Door:
    """One of the three doors, by name (the test runs once per door)."""
    return Door(request.param, corpus_scripts, make_secret, tls)
