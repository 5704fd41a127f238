"""The Lambda bundle: built without Docker from any install, reproducible, runnable anywhere."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.cli import main
from alquimista_schema.tooling import bundle
from tests.support.helpers import TLS, missing, secret_for

ROOT = Path(__file__).resolve().parents[2]
TARGET = "3.12"
slow = pytest.mark.slow


def snapshot(dest: Path) -> Path:
    """Copy the checkout (top-level files, src/, lambda_entry/): a source nobody edits mid-test."""
    dest.mkdir(parents=True)
    for path in ROOT.iterdir():
        if path.is_file():
            shutil.copy2(path, dest / path.name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "src", dest / "src", ignore=skip)
    shutil.copytree(ROOT / "lambda_entry", dest / "lambda_entry", ignore=skip)
    return dest


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot(tmp_path_factory.mktemp("checkout") / "alquimista-schema")


@pytest.fixture(scope="module")
def built(project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`pip install .` (not editable) into a fresh venv; its `bundle`, run inside the checkout.

    The venv's own setuptools is too old to build the package (issue 12): the build
    must be pip's isolated one. Returns the zip and what the command printed.
    """
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", str(project)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import alquimista_schema.tooling.bundle as b; print(b.__file__)"],
                           env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(venv)), where.stdout  # the installed copy, not ours
    out = tmp_path_factory.mktemp("dist") / "runner.zip"
    done = subprocess.run(
        [str(venv / "bin" / "alquimista-schema"), "bundle", "--python", TARGET,
         "--arch", "x86_64", "--output", str(out)],
        cwd=project / "src" / "alquimista_schema", env=env, capture_output=True, text=True,
        timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"building the package wheel from {project} " in done.stderr
    return out, done.stdout


@slow
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
    assert manifest["head"] == command.heads()[0]
    assert "alquimista_schema/migrations/lint.json" in names
    assert "handler: lambda_entry.handler.handler" in printed
    assert "unzipped" in printed


@slow
def test_bytecode_is_precompiled_for_the_target(built: tuple[Path, str]) -> None:
    path, printed = built
    if bundle.find_interpreter(TARGET) is None:
        assert "not precompiled" in printed
        missing(f"python{TARGET}", f"pyenv install {TARGET}")
    names = zipfile.ZipFile(path).namelist()
    assert "alquimista_schema/__pycache__/command.cpython-312.pyc" in names
    assert "bytecode: precompiled with" in printed


@slow
def test_same_inputs_give_a_byte_identical_zip(built: tuple[Path, str], project: Path,
                                               tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """This copy (editable), from another folder with --project: the installed copy's bytes."""
    monkeypatch.chdir(tmp_path)
    again = tmp_path / "again.zip"
    result = CliRunner().invoke(main, ["bundle", "--python", TARGET, "--arch", "x86_64",
                                       "--output", str(again), "--project", str(project)])
    assert result.exit_code == 0, result.output
    assert again.read_bytes() == built[0].read_bytes()
    info = zipfile.ZipFile(again).infolist()
    assert {i.date_time for i in info} == {(1980, 1, 1, 0, 0, 0)}
    assert [i.filename for i in info] == sorted(i.filename for i in info)


@slow
def test_arm64_gets_arm64_wheels(project: Path, tmp_path: Path) -> None:
    report = bundle.build(tmp_path / "arm.zip", python=TARGET, arch="arm64",
                          compile_bytecode=False, project=project)
    names = zipfile.ZipFile(report.output).namelist()
    assert any(n.startswith("psycopg2/_psycopg.cpython-312-aarch64-linux-gnu") for n in names)
    assert not report.precompiled


# --- checked before building: seconds, not a build's minute --------------------------


SUPPORTED = "choose --python 3.11 or 3.12 or 3.13 or 3.14"


@pytest.mark.parametrize(("python", "says"), [
    ("3.99", f"error: Lambda runs no CPython 3.99: {SUPPORTED}"),
    ("3.10", "error: alquimista-schema requires Python >=3.11 (requires-python in "
             "{project}/pyproject.toml), so not CPython 3.10: " + SUPPORTED),
])
def test_a_target_python_that_cannot_run_is_refused_before_building(
        project: Path, tmp_path: Path, python: str, says: str) -> None:
    """3.99 was reported as psycopg2 having no wheel, after the package's build."""
    began = time.monotonic()
    result = CliRunner().invoke(main, ["bundle", "--python", python, "--output",
                                       str(tmp_path / "x.zip"), "--project", str(project)])
    assert time.monotonic() - began < 3
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [says.format(project=project)]
    assert not (tmp_path / "x.zip").exists()


def _read_only(tmp_path: Path) -> Path:
    """A folder this user cannot write to (root writes through any mode, but not into /sys)."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "a-file").write_text("")
    return tmp_path / "a-file" / "dist"


@pytest.mark.parametrize(("where", "reason"), [
    (_read_only, "Permission denied"), (_under_a_file, "Not a directory"),
])
def test_an_output_that_cannot_be_written_is_refused_before_building(
        project: Path, tmp_path: Path, where: Any, reason: str) -> None:
    """It used to build for 12 s, then fail with "unexpected OSError ... (a bug)"."""
    output = where(tmp_path) / "runner.zip"
    began = time.monotonic()
    result = CliRunner().invoke(main, ["bundle", "--output", str(output),
                                       "--project", str(project)])
    assert time.monotonic() - began < 3
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: cannot write the bundle to {output} ({reason}): choose another --output; "
        "nothing was built"]


def test_an_output_that_is_a_folder_is_refused_before_building(project: Path,
                                                                tmp_path: Path) -> None:
    with pytest.raises(bundle.BundleError, match=re.escape(
            f"cannot write the bundle to {tmp_path} (a folder, not the zip's path)")):
        bundle.build(tmp_path, project=project)


@pytest.mark.parametrize(("specifier", "python", "admitted"), [
    (">=3.11", "3.10", False), (">=3.11", "3.11", True), (">=3.11,<3.13", "3.13", False),
    (">=3.11, <3.13", "3.12", True), ("==3.*", "3.12", True), ("==3.12.*", "3.13", False),
    ("~=3.11", "3.14", True), ("~=3.11.2", "3.12", False), ("!=3.12", "3.12", False),
    ("", "3.12", True), (">3.11", "3.11", False),
])
def test_requires_python_is_read_as_pip_reads_it(specifier: str, python: str,
                                                 admitted: bool) -> None:
    assert bundle.admits(specifier, python) is admitted


def test_an_unreadable_requires_python_is_named() -> None:
    with pytest.raises(bundle.BundleError, match="requires-python '>=three': cannot read"):
        bundle.admits(">=three", "3.12")


@slow
def test_a_broken_package_build_is_not_blamed_on_a_dependency(project: Path,
                                                              tmp_path: Path) -> None:
    broken = snapshot(tmp_path / "broken")
    pyproject = broken / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        'version = "0.1.0"\n', 'version = "0.1.0"\nnonsense = 1\n', 1))
    with pytest.raises(bundle.PackageBuildFailed) as exc:
        bundle.build(tmp_path / "x.zip", compile_bytecode=False, project=broken)
    message = str(exc.value)
    assert message.startswith(f"building the alquimista-schema package from {broken} failed")
    assert "must not contain {'nonsense'} properties" in message  # setuptools' own words
    assert "wheel for the target platform" not in message
    assert "alq-bundle-" not in message  # the checkout's path, not the build's scratch copy
    assert not (tmp_path / "x.zip").exists()


@slow
def test_over_lambdas_limits_nothing_is_written(project: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "MAX_UNZIPPED", 1_000_000)
    with pytest.raises(bundle.BundleError, match="over Lambda's"):
        bundle.build(tmp_path / "big.zip", compile_bytecode=False, project=project)
    assert not (tmp_path / "big.zip").exists()


def _other_project(folder: Path) -> list[str]:
    (folder / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    return [f"{folder}/pyproject.toml names 'something-else'"]


def _no_lambda_entry(folder: Path) -> list[str]:
    (folder / "pyproject.toml").write_text('[project]\nname = "alquimista_schema"\n')
    return ["no lambda_entry/handler.py"]


def _bad_toml(folder: Path) -> list[str]:
    (folder / "pyproject.toml").write_text("[project\n")
    return [f"{folder}/pyproject.toml cannot be read"]


@pytest.mark.parametrize(("make", "project_option"), [
    (lambda folder: [], False),
    (_other_project, False),
    (_bad_toml, False),
    (lambda folder: ["is not an alquimista-schema checkout (no pyproject.toml)"], True),
    (_no_lambda_entry, True),
])
def test_no_checkout_says_where_to_build_from(make: Any, project_option: bool,
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "not-a-checkout"
    folder.mkdir()
    expected = make(folder)
    monkeypatch.chdir(folder)
    args = ["bundle", "--output", str(tmp_path / "x.zip")]
    result = CliRunner().invoke(main, args + (["--project", str(folder)] if project_option
                                              else []))
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "--project" in line
    if not project_option:
        assert line.startswith(f"error: no alquimista-schema checkout in {folder} or its parents")
        assert "cd into the checkout" in line
    for fragment in expected:
        assert fragment in line
    assert not (tmp_path / "x.zip").exists()


# What pip really printed (pip 26), and what the bundle must make of it.
NO_WHEEL = ("ERROR: Could not find a version that satisfies the requirement "
            "psycopg2-binary<3,>=2.9 (from versions: none)\n"
            "ERROR: No matching distribution found for psycopg2-binary<3,>=2.9\n")
UNREACHABLE = ("WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, "
               "status=None)) after connection broken by 'NewConnectionError(\"HTTPConnection("
               "host='127.0.0.1', port=9): Failed to establish a new connection: [Errno 111] "
               "Connection refused\")': /simple/alembic/\n"
               "ERROR: Could not find a version that satisfies the requirement alembic<2,>=1.18 "
               "(from versions: none)\n"
               "ERROR: No matching distribution found for alembic<2,>=1.18\n")
OLD_PYTHON = "ERROR: Package 'alquimista-schema' requires a different Python: 3.10.0 not in " \
             "'>=3.11'\n"


@pytest.mark.parametrize(("output", "kind", "says"), [
    (NO_WHEEL, bundle.NoWheelForTarget,
     "the dependency psycopg2-binary<3,>=2.9 has no wheel for CPython 3.12 on manylinux "
     "aarch64"),
    (UNREACHABLE, bundle.BundleError, "pip could not reach the package index"),
    (OLD_PYTHON, bundle.BundleError, "requires a different Python: 3.10.0 not in '>=3.11': "
                                     "choose another --python"),
    ("ERROR: something new\n", bundle.BundleError,
     "could not install the bundle's packages for CPython 3.12 on manylinux aarch64: "
     "something new"),
])
def test_pip_failures_are_told_apart(output: str, kind: type[Exception], says: str) -> None:
    error = bundle.install_error(output, "3.12", "aarch64")
    assert type(error) is kind
    assert says in str(error)


@slow
def test_runs_from_an_empty_folder_on_the_target_python(
        built: tuple[Path, str], tmp_path: Path, migrator_url: URL, make_secret: Any,
        moto_endpoint: str, tls: TLS) -> None:
    """The test that would have caught the missing driver and the wrong migrations path."""
    python = bundle.find_interpreter(TARGET)
    if python is None:
        missing(f"python{TARGET}", f"pyenv install {TARGET}")
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
    assert answer["to_revision"] == command.heads()[0]
    assert answer["message"] == "Migration all executed successfully"
    assert all(f.startswith(str(task)) for f in answer["_files"])
    assert os.listdir(task)  # unzipped, nothing else needed


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
