"""Every `alquimista-schema invoke` command the READMEs give, run as written, does what they say.

The commands are read from README.md and deploy/cdk/README.md (a line of a fenced block, or
inline code, starting ``alquimista-schema invoke``); placeholders are filled in (``<env>``:
each environment; ``REV``: a revision read from the script directory). Each runs as a child
process (the installed console script) on a database in the state its sentence implies, and
must exit 0 and print the summary the README describes, and leave the database there.

What stands in: Lambda's API (tests/support/lambda_api.py, written from botocore's service
model). What is real: the handler (``lambda_entry.handler.handler``, in this process), the
PostgreSQL it migrates over TLS, and the secret it reads from Secrets Manager (moto's server).
"""

from __future__ import annotations

import http.client
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

import lambda_entry.handler as entry
from alquimista_schema import command
from tests.support import lambda_api
from tests.support.helpers import ROOT, TLS, secret_for
from tests.support.revisions import HEAD, PREVIOUS, after

READMES = (ROOT / "README.md", ROOT / "deploy" / "cdk" / "README.md")
# At a line's start (a fenced block) or after a backtick (inline code); `\` continues a line.
COMMAND = re.compile(r"(?:^|`)(alquimista-schema invoke\b(?:[^`\n\\]|\\\n|\\(?!\n))*)", re.M)
ENVIRONMENTS = ("dev", "staging", "prod")
SEEN = {("README.md", "upgrade"), ("deploy/cdk/README.md", "upgrade"),
        ("deploy/cdk/README.md", "downgrade")}
"""(README, action) of the commands the READMEs give today: each must still be found."""
# action -> (the database's revision before, what REV means, its revision after): an
# upgrade right after a deploy meets an empty database; "to undo revisions" one at head.
STATES: dict[str, tuple[str | None, str, str | None]] = {
    "upgrade": (None, HEAD, HEAD),
    "downgrade": (HEAD, PREVIOUS, PREVIOUS),
}
APPLIED = re.compile(r"^  (\S+)\s+[\d.]+ ms  ")


def readme_commands() -> list[tuple[str, str]]:
    """(README:line, the command as written) for every invoke command the READMEs give."""
    found = []
    for path in READMES:
        text = path.read_text(encoding="utf-8")
        for match in COMMAND.finditer(text):
            line = text.count("\n", 0, match.start(1)) + 1
            written = re.sub(r"\\\n\s*", " ", match.group(1)).strip()
            found.append((f"{path.relative_to(ROOT).as_posix()}:{line}", written))
    return found


def action_of(written: str) -> str:
    words = shlex.split(written, comments=True)
    return words[words.index("--action") + 1] if "--action" in words[:-1] else "upgrade"


def function_of(written: str, env: str) -> str:
    words = shlex.split(written, comments=True)
    assert "--function" in words[:-1], f"`{written}` names no --function"
    return words[words.index("--function") + 1].replace("<env>", env)


COMMANDS = readme_commands()
EXPANDED = [(where, written, env) for where, written in COMMANDS
            for env in (ENVIRONMENTS if "<env>" in written else ("dev",))]
CASES = [pytest.param(*case, id=f"{case[0]}[{case[2]}]") for case in EXPANDED]
NAMES = {function_of(written, env): env for _, written, env in EXPANDED}
"""Every function the commands name, and its ENVIRONMENT (the name's <env>)."""


def test_the_readmes_still_give_their_invoke_commands() -> None:
    found = {(where.split(":")[0], action_of(written)) for where, written in COMMANDS}
    assert len(COMMANDS) >= 3, COMMANDS
    assert found >= SEEN, f"an invoke command left the READMEs: {sorted(SEEN - found)}"


@pytest.fixture
def lam(aws: Any, tls: TLS, migrator_url: URL, make_secret: Callable[..., str],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[lambda_api.LambdaAPI]:
    """Every function the READMEs name, each the real handler in its own warm container,
    configured as the README's table says, all on one fresh database (the migration role)."""
    arn = make_secret(secret_for(migrator_url))
    for name in ("DB_HOST", "DB_PORT", "DB_NAME", "ENVIRONMENT", "LOCK_WAIT_SECONDS",
                 "LINT_POLICY", "SNAPSHOT_BEFORE_UPGRADE", "DATABASE_URL", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(entry, "_runner", None)

    def container() -> lambda_api.Handler:
        runner: list[Any] = [None]

        def run(event: Any, context: Any) -> Any:
            entry._runner = runner[0]
            try:
                return entry.handler(event, context)
            finally:
                runner[0] = entry._runner
        return run

    functions = {name: lambda_api.Function(container(), 300, {
        "DB_SECRET_ARN": arn, "DB_SSLROOTCERT": str(tls.ca), "ENVIRONMENT": env})
        for name, env in NAMES.items()}
    with lambda_api.serve(functions) as api:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", api.endpoint)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield api


def cli(words: list[str]) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("alquimista-schema")
    assert script.exists(), f"no console script at {script}: install the package (make setup)"
    return subprocess.run([str(script), *words[1:]], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize(("where", "written", "env"), CASES)
def test_a_readme_invoke_command_does_what_the_readme_says(
        where: str, written: str, env: str, lam: lambda_api.LambdaAPI,
        migrator_url: URL) -> None:
    action = action_of(written)
    assert action in STATES, (f"{where}: `{written}`: --action {action} has no expected "
                              "outcome here: add one to STATES")
    before, rev, after_ = STATES[action]
    if before is not None:
        command.upgrade(migrator_url, before)
    words = [w.replace("<env>", env) for w in shlex.split(written, comments=True)]
    words = [rev if w == "REV" else w for w in words]
    left = [w for w in words if re.search(r"<[^>]*>|\.\.\.|^[A-Z_]{2,}$", w)]
    assert not left, f"{where}: `{written}`: placeholders this test cannot fill: {left}"
    name = function_of(written, env)
    result = cli(words)
    shown = (f"{where}: the README says `{written}`; run as `{shlex.join(words)}` against "
             f"{name} (ENVIRONMENT={env}), it exited {result.returncode}:\n"
             f"{result.stdout}{result.stderr}")
    print(shown)
    assert result.returncode == 0, shown
    lines = result.stdout.splitlines()
    assert lines, shown
    assert lines[0].startswith(
        f"{name}: {action} success ({before or 'base'} -> {after_ or 'base'}) in "), shown
    moved = [m.group(1) for m in map(APPLIED.match, lines[1:]) if m]
    expected = after(before) if action == "upgrade" else list(reversed(after(after_, HEAD)))
    assert moved == expected, shown
    assert lam.configurations == [name], "the function's timeout is read first, once"
    assert [(n, e.get("action")) for n, e, _ in lam.invocations] == [(name, action)], \
        "one Invoke, of the function the README names, with its action"
    assert command.current(migrator_url) == after_, shown


def test_a_function_not_served_is_lambdas_resource_not_found(lam: lambda_api.LambdaAPI) -> None:
    result = cli(["alquimista-schema", "invoke", "--function", "aurora-migrations-runner-x"])
    assert result.returncode == 1
    assert "no such function in this account and region" in result.stderr
    assert lam.invocations == []
    assert lam.configurations == []
    port = int(lam.endpoint.rsplit(":", 1)[1])
    for given, status, kind in (("aurora-migrations-runner-x", 404, "ResourceNotFoundException"),
                                ("runner-%3Cenv%3E", 400, "ValidationException")):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", f"/2015-03-31/functions/{given}/configuration")
            answer = connection.getresponse()
            assert (answer.status, answer.getheader("x-amzn-ErrorType")) == (status, kind)
            assert json.loads(answer.read())["Type"] == "User"
        finally:
            connection.close()
