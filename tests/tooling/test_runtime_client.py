"""The bundle under AWS's own runtime client, started the way Lambda's python3.12 starts it.

The zip is unzipped into an empty folder that is then read-only (as /var/task is);
``awslambdaric`` and boto3 sit outside it, as in /var/runtime; ``python3.12 -m awslambdaric
<handler>`` runs with the task root as its working directory (first on sys.path) and the
handler string the deployment uses. A stand-in Runtime API (``tests/runtime_api.py``)
serves it events against the TLS test server and moto's Secrets Manager.
"""

from __future__ import annotations

import json
import os
import platform
import runpy
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from alquimista_schema.tooling import bundle
from tests.support.helpers import TLS, leaks, missing, secret_for
from tests.support.runtime_api import RuntimeAPI

ROOT = Path(__file__).resolve().parents[2]
SPEC: dict[str, Any] = runpy.run_path(str(ROOT / "deploy/cdk/alquimista_deploy/spec.py"))
VERSION, ARCH = str(SPEC["PYTHON_VERSION"]), str(SPEC["ARCHITECTURE"])
NAME, REGION = "aurora-migrations-runner-test", "sa-east-1"
WAIT = 120.0  # seconds, for any one answer: a cold start and a full upgrade take a few
# Mount the task root read-only in a private mount namespace, then become the runtime.
_RO_MOUNT = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'
_WRITE_PROBE = """
import errno, sys
from pathlib import Path
task = Path(sys.argv[1])
for target, mode in ((task / "new-file", "x"), (task / "alquimista_schema" / "new-file", "x"),
                     (task / "lambda_entry" / "handler.py", "a")):
    try:
        open(target, mode).close()
        print("WROTE", target)
    except OSError as exc:
        print(errno.errorcode[exc.errno])
"""


@dataclass(frozen=True)
class Function:
    python: str
    task: Path
    runtime: Path
    launcher: list[str]
    """Prefix of the command line that keeps the task root read-only for the runtime."""
    read_only_by: str


@pytest.fixture(scope="module")
def function(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Function]:
    """Build the bundle once, unzip it read-only, and put AWS's runtime client beside it."""
    python = bundle.find_interpreter(VERSION)
    if python is None:
        missing(f"python{VERSION}", f"pyenv install {VERSION}")
    if platform.machine() != ARCH:
        missing(f"an {ARCH} machine", "the bundle's compiled driver is the function's")
    base = tmp_path_factory.mktemp("function")
    report = bundle.build(base / "runner.zip", python=VERSION, arch=ARCH, project=ROOT)
    task, runtime = base / "task", base / "runtime"
    task.mkdir()
    zipfile.ZipFile(report.output).extractall(task)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--target", str(runtime), "--python-version", VERSION, "--only-binary=:all:",
                    "--platform", f"manylinux2014_{ARCH}", "awslambdaric", "boto3"],
                   check=True, timeout=600)
    subprocess.run(["chmod", "-R", "a-w", str(task), str(runtime)], check=True)
    try:
        launcher, how = _read_only_launcher(python, task)
        yield Function(python, task, runtime, launcher, how)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(task), str(runtime)], check=False)


def _probe_writes(prefix: list[str], python: str, task: Path) -> list[str]:
    """Try to write into ``task`` the way the runtime would run; return what happened."""
    done = subprocess.run([*prefix, python, "-S", "-c", _WRITE_PROBE, str(task)],
                          capture_output=True, text=True, timeout=60, check=False)
    return done.stdout.split() if done.returncode == 0 else [f"probe failed: {done.stderr}"]


def _read_only_launcher(python: str, task: Path) -> tuple[list[str], str]:
    """Return how to start a process for which ``task`` is read-only, proven by a probe.

    chmod alone does not stop root, so a private mount namespace mounts the folder
    read-only (EROFS for everyone, root included), as Lambda's /var/task is. Without
    that, an unprivileged caller's chmod is the proof (EACCES).
    """
    unshare = shutil.which("unshare")
    tried = []
    if unshare:
        userns = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
        prefix = [unshare, *userns, "--mount", "--propagation", "private",
                  "sh", "-c", _RO_MOUNT, "sh", str(task)]
        seen = _probe_writes(prefix, python, task)
        if seen == ["EROFS"] * 3:
            return prefix, "a read-only bind mount in a private mount namespace (EROFS)"
        tried.append(f"read-only bind mount: {seen}")
    if os.geteuid() != 0:
        seen = _probe_writes([], python, task)
        if seen == ["EACCES"] * 3:
            return [], "chmod -R a-w, the runtime running as an unprivileged user (EACCES)"
        tried.append(f"chmod as uid {os.geteuid()}: {seen}")
    missing("a way to make the task root read-only for the runtime",
            f"tried {tried or 'nothing: no unshare, and running as root'}")


def _environment(function: Function, api: RuntimeAPI, *, secret_arn: str, ca: Path,
                 moto_endpoint: str) -> dict[str, str]:
    """The function's environment as Lambda sets it, plus the runner's own configuration."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(function.task), "LAMBDA_RUNTIME_DIR": str(function.runtime),
        "PYTHONPATH": str(function.runtime), "_HANDLER": str(SPEC["HANDLER"]),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{SPEC['RUNTIME']}",
        "AWS_LAMBDA_RUNTIME_API": api.address, "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_FUNCTION_NAME": NAME, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{NAME}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2025/01/01/[$LATEST]0123456789abcdef",
        "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_endpoint,
        "DB_SECRET_ARN": secret_arn, "DB_SSLROOTCERT": str(ca),
    }


# The conversation, in order (each answer depends on the ones before): event, and what the
# answer must contain. Cross-answer checks follow in the test.
CONVERSATION: list[tuple[Any, dict[str, Any]]] = [
    ({"action": "run-migration", "target": "all"},
     {"status": "success", "migration": "all",
      "message": "Migration all executed successfully", "from_revision": None}),
    ({"action": "list-migrations"}, {"status": "success"}),
    ({"action": "upgrade"}, {"status": "noop", "applied": []}),
    ({"action": "explode"}, {"status": "error", "error_code": "BAD_EVENT"}),
    ([1], {"status": "error", "error_code": "BAD_EVENT"}),
    ({"action": "current"}, {"status": "success", "is_head": True}),
]


@pytest.mark.slow
def test_awslambdaric_serves_the_bundle_from_a_read_only_task_root(
        function: Function, migrator_url: URL, make_secret: Any, moto_endpoint: str, tls: TLS,
        tmp_path: Path) -> None:
    api = RuntimeAPI(function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:{NAME}",
                     timeout_ms=int(SPEC["TIMEOUT_SECONDS"]) * 1000,
                     max_events=len(CONVERSATION), next_wait=WAIT)
    env = _environment(function, api, secret_arn=make_secret(secret_for(migrator_url)),
                       ca=tls.ca, moto_endpoint=moto_endpoint)
    command = [*function.launcher, function.python, "-S", "-m", "awslambdaric",
               str(SPEC["HANDLER"])]
    logs = tmp_path / "runtime.log"
    print(f"task root read-only by {function.read_only_by}")
    with api.serving(), logs.open("wb") as sink:
        runtime = subprocess.Popen(command, cwd=function.task, env=env, stdin=subprocess.DEVNULL,
                                   stdout=sink, stderr=subprocess.STDOUT)
        try:
            answers = [_answer(api, event, runtime) for event, _ in CONVERSATION]
        finally:
            _stop(runtime)
            print(logs.read_text(errors="replace"))  # scanned for secrets by conftest's hook
    assert leaks(logs.read_text(errors="replace")) == []
    assert api.requests[0] == "GET /2018-06-01/runtime/invocation/next"  # no init error
    assert not [r for r in api.requests if r.endswith("/error")]
    for (_, expected), answer in zip(CONVERSATION, answers, strict=True):
        assert {k: answer.get(k) for k in expected} == expected, answer
    run, listed, upgrade, _, _, current = answers
    head = run["to_revision"]
    assert head == bundle_head(function.task)
    assert run["applied"][-1]["revision"] == head
    assert listed["executedMigrations"] == [a["revision"] for a in run["applied"]]
    assert upgrade["to_revision"] == head
    assert current["revision"] == head


def _answer(api: RuntimeAPI, event: Any, runtime: subprocess.Popen[bytes]) -> Any:
    """Invoke once: the answer must come through /response, never /error or /init/error."""
    outcome = api.invoke(event, timeout=WAIT, exited=runtime.poll)
    print("EVENT", json.dumps(event), "->", outcome.kind, json.dumps(outcome.body))
    assert outcome.kind == "response", outcome
    assert outcome.body["request_id"] == outcome.request_id  # the runtime's context, passed on
    return outcome.body


def _stop(runtime: subprocess.Popen[bytes]) -> None:
    """End the runtime (Lambda would freeze it): politely, then not."""
    runtime.terminate()
    try:
        runtime.wait(timeout=10)
    except subprocess.TimeoutExpired:
        runtime.kill()
        runtime.wait(timeout=10)


def bundle_head(task: Path) -> str:
    """The head the bundle recorded when it was built."""
    manifest = json.loads((task / "alquimista_schema/migrations/manifest.json").read_text())
    return str(manifest["head"])


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception),
                                             ("", pytest.skip.Exception),
                                             ("false", pytest.skip.Exception)])
def test_a_missing_tool_fails_under_ci_and_skips_elsewhere(
        ci: str, outcome: type[BaseException], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match=r"python3\.12 is not available here \(pyenv install"):
        missing("python3.12", "pyenv install 3.12")
