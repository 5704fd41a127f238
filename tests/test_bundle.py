"""The Lambda bundle: built without Docker, reproducible, and runnable from an empty folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from alquimista_schema import bundle
from alquimista_schema.cli import main
from tests.conftest import TLS, secret_for

pytestmark = pytest.mark.slow
TARGET = "3.12"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Build through the CLI, as a person would; return the zip and what it printed."""
    out = tmp_path_factory.mktemp("dist") / "runner.zip"
    result = CliRunner().invoke(main, ["bundle", "--python", TARGET, "--arch", "x86_64",
                                       "--output", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.stdout


def test_contents(built: tuple[Path, str]) -> None:
    path, printed = built
    names = set(zipfile.ZipFile(path).namelist())
    assert "lambda_entry/handler.py" in names
    assert "alquimista_schema/migrations/versions/017_dry_run_log.py" in names
    assert "alquimista_schema/migrations/env.py" in names
    assert "alembic/command.py" in names  # the library, never the repository's env folder
    assert "alembic/env.py" not in names
    assert any(n.startswith("psycopg2/_psycopg.cpython-312-x86_64-linux-gnu") for n in names)
    assert not any(n.startswith(("boto3/", "botocore/")) for n in names)
    assert not any(n.endswith("direct_url.json") for n in names)
    manifest = json.loads(zipfile.ZipFile(path).read("alquimista_schema/migrations/manifest.json"))
    assert manifest["built"] is True
    assert manifest["head"] == "019"
    assert "alquimista_schema/migrations/lint.json" in names
    assert "handler: lambda_entry.handler.handler" in printed
    assert "unzipped" in printed


def test_bytecode_is_precompiled_for_the_target(built: tuple[Path, str]) -> None:
    path, printed = built
    if bundle.find_interpreter(TARGET) is None:
        assert "not precompiled" in printed
        pytest.skip(f"no python{TARGET} on this machine")
    names = zipfile.ZipFile(path).namelist()
    assert "alquimista_schema/__pycache__/migrate.cpython-312.pyc" in names
    assert "bytecode: precompiled with" in printed


def test_same_inputs_give_a_byte_identical_zip(built: tuple[Path, str], tmp_path: Path) -> None:
    again = bundle.build(tmp_path / "again.zip", python=TARGET, arch="x86_64")
    assert again.output.read_bytes() == built[0].read_bytes()
    info = zipfile.ZipFile(again.output).infolist()
    assert {i.date_time for i in info} == {(1980, 1, 1, 0, 0, 0)}
    assert [i.filename for i in info] == sorted(i.filename for i in info)


def test_arm64_gets_arm64_wheels(tmp_path: Path) -> None:
    report = bundle.build(tmp_path / "arm.zip", python=TARGET, arch="arm64",
                          compile_bytecode=False)
    names = zipfile.ZipFile(report.output).namelist()
    assert any(n.startswith("psycopg2/_psycopg.cpython-312-aarch64-linux-gnu") for n in names)
    assert not report.precompiled


def test_a_target_without_wheels_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(bundle.BundleError, match="wheel for the target platform"):
        bundle.build(tmp_path / "x.zip", python="3.99", compile_bytecode=False)
    assert not (tmp_path / "x.zip").exists()


def test_over_lambdas_limits_nothing_is_written(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "MAX_UNZIPPED", 1_000_000)
    with pytest.raises(bundle.BundleError, match="over Lambda's"):
        bundle.build(tmp_path / "big.zip", compile_bytecode=False)
    assert not (tmp_path / "big.zip").exists()


RUN = """
import json, sys, types
from lambda_entry.handler import handler
ctx = types.SimpleNamespace(aws_request_id="bundle-test",
                            get_remaining_time_in_millis=lambda: 300000)
answer = handler(json.loads(sys.argv[1]), ctx)
import psycopg2, alembic, lambda_entry, alquimista_schema
answer["_files"] = [m.__file__ for m in (psycopg2, alembic, lambda_entry, alquimista_schema)]
print("ANSWER " + json.dumps(answer))
"""


def test_runs_from_an_empty_folder_on_the_target_python(
        built: tuple[Path, str], tmp_path: Path, migrator_url: URL, make_secret: Any,
        moto_endpoint: str, tls: TLS) -> None:
    """The test that would have caught the missing driver and the wrong migrations path."""
    python = bundle.find_interpreter(TARGET)
    if python is None:
        pytest.skip(f"python{TARGET} is not installed here (pyenv install {TARGET})")
    task = tmp_path / "task"
    zipfile.ZipFile(built[0]).extractall(task)
    runtime = tmp_path / "runtime"  # stands in for the boto3 the Lambda runtime provides
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--target",
                    str(runtime), "boto3"], check=True)
    arn = make_secret(secret_for(migrator_url))
    env = {"PATH": "/usr/bin:/bin", "DB_SECRET_ARN": arn, "DB_SSLROOTCERT": str(tls.ca),
           "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "sa-east-1",
           "AWS_DEFAULT_REGION": "sa-east-1", "LAMBDA_TASK_ROOT": str(task)}
    done = subprocess.run(
        [python, "-I", "-c", f"import sys; sys.path[:0] = [{str(task)!r}, {str(runtime)!r}]\n"
         + RUN, json.dumps({"action": "run-migration", "target": "all"})],
        cwd=task, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    [line] = [ln for ln in done.stdout.splitlines() if ln.startswith("ANSWER ")]
    answer = json.loads(line.removeprefix("ANSWER "))
    assert answer["status"] == "success", answer
    assert answer["to_revision"] == "019"
    assert answer["message"] == "Migration all executed successfully"
    assert all(f.startswith(str(task)) for f in answer["_files"])
    assert os.listdir(task)  # unzipped, nothing else needed
