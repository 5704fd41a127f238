"""Benchmarks: every figure a ratio against a baseline measured in the same run.

Run with ``make bench`` (about three minutes). It starts its own PostgreSQL (with TLS,
like Aurora) and a local Secrets Manager (moto's server), alternates each subject with
its baseline several times, takes medians, prints a table and writes
``bench/results/latest.json``.

1. cold no-op: a fresh interpreter imports the handler and answers ``upgrade head`` on a
   database at head (secret from the local endpoint) / ``alembic upgrade head`` as a
   fresh process on the same database.                                  goal <= 1.0
   The same with the secret from the Parameters and Secrets extension (a stand-in
   forwarding to moto: no boto3 import), ``cold_noop_ext_ratio``.       goal <= 0.5
2. upgrade base to head in a warm process / ``psql -f`` of the same offline SQL.
                                                                        goal <= 1.3
   The same upgrade under TABLE_POLICY=enforce (its offline render of each pending
   revision and its size query) / with the policy off, ``table_policy_ratio``.
                                                                        goal <= 1.5
3. no-op with 100, 1,000 and 10,000 synthetic revisions: the runner's upgrade / Alembic's
   ``command.upgrade``, both in-process on one connection.      goal <= 0.1 and flat
4. the bundle: zipped and unzipped size, and the handler's import time from the
   unzipped bundle on the target Python.
5. the scale series (bench/scale.py): a full upgrade from base through 100 and 1,000
   generated revisions, ours / plain ``alembic upgrade head`` (goal <= 1.0) and / ``psql
   -f`` of the offline SQL (information); the handler / the CLI at 1,000 (goal <= 1.1);
   peak RSS of each.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import scale  # bench/scale.py: the full-upgrade scale series
from sqlalchemy.engine import URL

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def median_pair(subject: Callable[[], float], baseline: Callable[[], float],
                rounds: int) -> tuple[float, float]:
    """Alternate subject and baseline ``rounds`` times; return both medians (seconds)."""
    a: list[float] = []
    b: list[float] = []
    for i in range(rounds):
        if i % 2:
            b.append(baseline())
            a.append(subject())
        else:
            a.append(subject())
            b.append(baseline())
    return statistics.median(a), statistics.median(b)


def timed(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def run(cmd: list[str], **kwargs: Any) -> float:
    return timed(lambda: subprocess.run(cmd, check=True, capture_output=True, **kwargs))


class Environment:
    """A PostgreSQL with TLS, a migration secret in moto's Secrets Manager."""

    def __init__(self) -> None:
        from alquimista_schema.connect.local import DevDatabase

        self.root = Path(tempfile.mkdtemp(prefix="alq-bench-"))
        self.server = DevDatabase(self.root, dbname="postgres")
        self.admin = self.server.start()
        self.ca = self.server.enable_tls()
        from moto.server import ThreadedMotoServer

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.moto.start()
        self.aws_env = {"AWS_ENDPOINT_URL_SECRETS_MANAGER": f"http://127.0.0.1:{port}",
                        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                        "AWS_DEFAULT_REGION": "sa-east-1", "AWS_REGION": "sa-east-1"}
        self.counter = 0

    def database(self) -> URL:
        import psycopg2

        self.counter += 1
        name = f"bench_{self.counter}"
        conn = psycopg2.connect(host=self.admin.host, port=self.admin.port,
                                user=self.admin.username, password=self.admin.password,
                                dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        conn.close()
        return self.admin.set(database=name)

    def secret_for(self, url: URL) -> str:
        import boto3

        client = boto3.client("secretsmanager", endpoint_url=self.aws_env[
            "AWS_ENDPOINT_URL_SECRETS_MANAGER"], region_name="sa-east-1",
            aws_access_key_id="bench", aws_secret_access_key="bench")  # noqa: S106 (moto)
        value = {"username": url.username, "password": url.password, "host": "localhost",
                 "port": url.port, "dbname": url.database, "engine": "postgres"}
        arn: str = client.create_secret(Name=f"bench/{url.database}",
                                        SecretString=json.dumps(value))["ARN"]
        return arn

    def close(self) -> None:
        self.moto.stop()
        self.server.remove()
        shutil.rmtree(self.root, ignore_errors=True)


def plain(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


COLD = """
import time, types
from lambda_entry.handler import handler
answer = handler({}, types.SimpleNamespace(aws_request_id="bench",
                 get_remaining_time_in_millis=lambda: 300000))
assert answer["status"] == "noop", answer
"""


def bench_cold_noop(env: Environment, rounds: int) -> dict[str, Any]:
    """Cold no-op, secret through boto3 and through the extension, / the alembic CLI."""
    from alquimista_schema import command
    from tests.support import extension_standin  # written from AWS's interface; forwards to moto

    url = env.database()
    command.upgrade(url, "head")
    runner_env = {**os.environ, **env.aws_env, "DB_SECRET_ARN": env.secret_for(url),
                  "DB_SSLROOTCERT": str(env.ca), "PYTHONPATH": str(ROOT)}
    alembic_env = {**os.environ, "DATABASE_URL": plain(url)}
    alembic = str(Path(sys.executable).parent / "alembic")

    def baseline() -> float:
        return run([alembic, "upgrade", "head"], env=alembic_env, cwd=ROOT)

    runner, alembic_s = median_pair(
        lambda: run([sys.executable, "-c", COLD], env=runner_env, cwd=ROOT), baseline, rounds)
    endpoint = env.aws_env["AWS_ENDPOINT_URL_SECRETS_MANAGER"]
    with extension_standin.serve(endpoint, token="bench") as ext:  # noqa: S106 (a stand-in)
        ext_env = {**runner_env, "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(ext.port),
                   "AWS_SESSION_TOKEN": "bench"}
        with_ext, alembic_ext_s = median_pair(
            lambda: run([sys.executable, "-c", COLD], env=ext_env, cwd=ROOT), baseline, rounds)
    return {"cold_noop_ratio": runner / alembic_s, "cold_noop_runner_s": runner,
            "cold_noop_alembic_cli_s": alembic_s,
            "cold_noop_ext_ratio": with_ext / alembic_ext_s, "cold_noop_ext_runner_s": with_ext,
            "cold_noop_ext_alembic_cli_s": alembic_ext_s}


def bench_upgrade(env: Environment, rounds: int) -> dict[str, Any]:
    from alquimista_schema import command

    sql_file = Path(env.root) / "offline.sql"
    sql_file.write_text(command.sql("head"))
    psql = shutil.which("psql") or "psql"

    def runner() -> float:
        url = env.database()
        return timed(lambda: command.upgrade(url, "head"))

    def baseline() -> float:
        url = env.database()
        return run([psql, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(sql_file), plain(url)])

    runner_s, psql_s = median_pair(runner, baseline, rounds)
    return {"upgrade_ratio_vs_psql": runner_s / psql_s, "upgrade_runner_s": runner_s,
            "upgrade_psql_s": psql_s}


def bench_table_policy(env: Environment, rounds: int) -> dict[str, Any]:
    """An upgrade base -> head under TABLE_POLICY=enforce (prod's default: each pending
    revision rendered offline, its tables' sizes read) / the same with the policy off."""
    from alquimista_schema import command

    def upgrade(policy: str) -> Callable[[], float]:
        def once() -> float:
            url = env.database()
            return timed(lambda: command.upgrade(url, "head",
                                                 run=command.Run(table_policy=policy)))
        return once

    enforce_s, off_s = median_pair(upgrade("enforce"), upgrade("off"), rounds)
    return {"table_policy_ratio": enforce_s / off_s, "table_policy_enforce_s": enforce_s,
            "table_policy_off_s": off_s}


def bench_noop_many(env: Environment, counts: list[int], rounds: int) -> dict[str, Any]:
    from alembic import command as alembic_command

    from alquimista_schema import command
    from alquimista_schema.connect.database import connect
    from alquimista_schema.runtime import probe
    from alquimista_schema.script import authoring, directory

    results: dict[str, Any] = {}
    original = directory.SCRIPT_LOCATION, directory.VERSIONS_LOCATION
    head = command.heads()[0]  # the synthetic revisions are chained after the real head
    for count in counts:
        folder = Path(tempfile.mkdtemp(prefix=f"alq-bench-{count}-")) / "migrations"
        shutil.copytree(original[0], folder, ignore=shutil.ignore_patterns("__pycache__"))
        down = head
        for n in range(1, count + 1):
            (folder / "versions" / f"s{n:05d}.py").write_text(scale.revision_file(
                f"s{n:05d}", down, f"SELECT {n}", f"SELECT {n}", f"Synthetic revision {n}."))
            down = f"s{n:05d}"
        directory.SCRIPT_LOCATION, directory.VERSIONS_LOCATION = folder, folder / "versions"
        try:
            authoring.write_manifest(built=True)  # as the bundle does at build time
            url = env.database()
            command.upgrade(url, head)
            command.stamp(url, down)
            probe.drop()
            with connect(url) as conn:
                config = directory.make_config(connection=conn, stdout=open(os.devnull, "w"))  # noqa: SIM115

                def runner(url: URL = url) -> float:
                    return timed(lambda: command.upgrade(url, "head"))

                def baseline(config: Any = config) -> float:
                    return timed(lambda: alembic_command.upgrade(config, "head"))

                runner_s, alembic_s = median_pair(runner, baseline,
                                                  rounds if count < 10_000 else 3)
            probe.drop()
        finally:
            directory.SCRIPT_LOCATION, directory.VERSIONS_LOCATION = original
            shutil.rmtree(folder.parent, ignore_errors=True)
        results[f"noop_{count}_ratio"] = runner_s / alembic_s
        results[f"noop_{count}_runner_s"] = runner_s
        results[f"noop_{count}_alembic_s"] = alembic_s
    return results


def bench_bundle(rounds: int) -> dict[str, Any]:
    from alquimista_schema.tooling import bundle

    work = Path(tempfile.mkdtemp(prefix="alq-bench-bundle-"))
    try:
        report = bundle.build(work / "runner.zip")
        results: dict[str, Any] = {"bundle_zip_bytes": report.zipped_bytes,
                                   "bundle_unzipped_bytes": report.unzipped_bytes,
                                   "bundle_precompiled": report.precompiled}
        python = bundle.find_interpreter("3.12")
        if python is None:
            results["handler_import_ms"] = None
            return results
        import zipfile

        task = work / "task"
        zipfile.ZipFile(report.output).extractall(task)
        env = {"PATH": "/usr/bin:/bin"}
        importing, bare = median_pair(
            lambda: run([python, "-I", "-c",
                         f"import sys; sys.path.insert(0, {str(task)!r}); "
                         "import lambda_entry.handler"], env=env, cwd=task),
            lambda: run([python, "-I", "-c", "import sys"], env=env, cwd=task), rounds)
        results["handler_import_ms"] = (importing - bare) * 1000
        results["handler_import_process_ms"] = importing * 1000
        results["python_startup_ms"] = bare * 1000
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    sys.path.insert(0, str(ROOT))  # tests.extension_standin
    rounds = int(os.environ.get("BENCH_ROUNDS", "7"))
    counts = [int(c) for c in os.environ.get("BENCH_COUNTS", "100,1000,10000").split(",")]
    scale_counts = [int(c) for c in os.environ.get("BENCH_SCALE", "100,1000").split(",") if c]
    scale_rounds = int(os.environ.get("BENCH_SCALE_ROUNDS", "3"))
    began = time.perf_counter()
    env = Environment()
    results: dict[str, Any] = {}
    try:
        results.update(bench_cold_noop(env, rounds))
        results.update(bench_upgrade(env, rounds))
        results.update(bench_table_policy(env, rounds))
        results.update(bench_noop_many(env, counts, rounds))
        results.update(bench_bundle(rounds))
        if scale_counts:
            results.update(scale.series(env, scale_counts, scale_rounds))
    finally:
        env.close()
    results["rounds"] = rounds
    results["elapsed_s"] = time.perf_counter() - began
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results, counts, scale_counts))
    return 0


def table(r: dict[str, Any], counts: list[int], scale_counts: list[int]) -> str:
    rows = [
        ("cold no-op / alembic CLI", r["cold_noop_ratio"], "<= 1.0",
         f"{r['cold_noop_runner_s'] * 1000:.0f} ms vs "
         f"{r['cold_noop_alembic_cli_s'] * 1000:.0f} ms"),
        ("cold no-op, extension / alembic CLI", r["cold_noop_ext_ratio"], "<= 0.5",
         f"{r['cold_noop_ext_runner_s'] * 1000:.0f} ms vs "
         f"{r['cold_noop_ext_alembic_cli_s'] * 1000:.0f} ms"),
        ("upgrade base->head / psql -f", r["upgrade_ratio_vs_psql"], "<= 1.3",
         f"{r['upgrade_runner_s'] * 1000:.0f} ms vs {r['upgrade_psql_s'] * 1000:.0f} ms"),
        ("upgrade, TABLE_POLICY enforce / off", r["table_policy_ratio"], "<= 1.5",
         f"{r['table_policy_enforce_s'] * 1000:.0f} ms vs "
         f"{r['table_policy_off_s'] * 1000:.0f} ms"),
    ]
    for c in counts:
        rows.append((f"no-op, {c:,} revisions / alembic", r[f"noop_{c}_ratio"], "<= 0.1",
                     f"{r[f'noop_{c}_runner_s'] * 1000:.2f} ms vs "
                     f"{r[f'noop_{c}_alembic_s'] * 1000:.0f} ms"))
    rows += scale.rows(r, scale_counts)
    lines = [f"{'benchmark':<34} {'ratio':>8}  {'goal':<7} medians (subject vs baseline)"]
    for name, ratio, goal, detail in rows:
        lines.append(f"{name:<34} {ratio:>8.3f}  {goal:<7} {detail}")
    imp = r.get("handler_import_ms")
    lines.append(f"bundle: {r['bundle_zip_bytes']:,} bytes zipped, "
                 f"{r['bundle_unzipped_bytes']:,} unzipped, precompiled={r['bundle_precompiled']}"
                 + (f"; handler import {imp:.1f} ms on 3.12 (beyond interpreter startup)"
                    if imp is not None else "; no python3.12 for the import time"))
    lines.append(f"elapsed {r['elapsed_s']:.0f} s; results in bench/results/latest.json")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
