"""The scale series: a full upgrade from base through N generated revisions.

N trivial revisions (the first creates a table, each next one adds a column to it) are
chained after the package's head in a scratch copy of the script directory, never in
the package. Every subject is a fresh process on a fresh database, from base:

- ours: ``alquimista-schema upgrade head`` (the CLI, in a process whose package points
  at the scratch copy): one Alembic run, with the lock, the audit row and the deadline
  check between revisions;
- Alembic: plain ``alembic upgrade head`` with an ini naming the scratch copy;
- psql: ``psql -f`` of the offline SQL of the same upgrade (``alquimista-schema sql``),
  shown for information: offline SQL is for review, not an engine;
- at the largest N, the Lambda handler's full upgrade (secret from moto's server).

Every subject connects over TLS (verify-full), as the handler does. Each child reports
its peak RSS. Ratios are medians of rounds in rotating order.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# bench's one revision template (scale.py and run.py): a script run with bench/ on its path,
# not the tests' package, so tests/support/revisions.scratch_revision is not importable here.
REVISION = '''"""{doc}"""
from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("{up}")


def downgrade() -> None:
    op.execute("{down_sql}")
'''

# Runs a door of the package against the scratch script directory; prints peak RSS (KiB).
CHILD = """
import json, sys, types
from pathlib import Path
from alquimista_schema.script import directory
folder = Path(sys.argv[1])
directory.SCRIPT_LOCATION, directory.VERSIONS_LOCATION = folder, folder / "versions"
door = sys.argv[2]
try:
    if door == "cli":
        from alquimista_schema.cli import main
        main(sys.argv[3:])
    else:
        from lambda_entry.handler import handler
        answer = handler({}, types.SimpleNamespace(aws_request_id="scale",
                         get_remaining_time_in_millis=lambda: 900_000))
        assert answer["status"] == "success", answer
except SystemExit as exit_:
    if exit_.code:
        raise
finally:
    # VmHWM: this process image's own peak (ru_maxrss keeps the forking parent's too)
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"rss_kib": peak}), file=sys.stderr)
"""


# The alembic CLI, reporting its peak RSS the same way.
ALEMBIC_CHILD = """
import json, sys
from alembic.config import main
try:
    main(sys.argv[1:])
finally:
    # VmHWM: this process image's own peak (ru_maxrss keeps the forking parent's too)
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"rss_kib": peak}), file=sys.stderr)
"""


def revision_file(rev: str, down: str, up: str, down_sql: str, doc: str) -> str:
    """The text of a generated revision ``rev`` after ``down`` (bench/run.py uses it too)."""
    return REVISION.format(rev=rev, down=down, up=up, down_sql=down_sql, doc=doc)


def scratch_scripts(count: int, head: str) -> Path:
    """A copy of the script directory with ``count`` revisions after ``head``."""
    from alquimista_schema.script import directory

    folder = Path(tempfile.mkdtemp(prefix=f"alq-scale-{count}-")) / "migrations"
    shutil.copytree(directory.SCRIPT_LOCATION, folder,
                    ignore=shutil.ignore_patterns("__pycache__", "manifest.json"))
    down = head
    for n in range(1, count + 1):
        up = ("CREATE TABLE bench_scale (id integer)" if n == 1
              else f"ALTER TABLE bench_scale ADD COLUMN c{n} integer")
        down_sql = ("DROP TABLE bench_scale" if n == 1
                    else f"ALTER TABLE bench_scale DROP COLUMN c{n}")
        (folder / "versions" / f"g{n:05d}.py").write_text(revision_file(
            f"g{n:05d}", down, up, down_sql, f"Generated revision {n} of the scale series."))
        down = f"g{n:05d}"
    return folder


def alembic_ini(folder: Path) -> Path:
    """The repository's alembic.ini, pointed at the scratch versions folder."""
    text = (ROOT / "alembic.ini").read_text().replace(
        "version_locations = %(here)s/src/alquimista_schema/migrations/versions",
        f"version_locations = {folder / 'versions'}")
    text = text.replace("script_location = %(here)s/alembic",
                        f"script_location = {ROOT / 'alembic'}")
    text = text.replace("prepend_sys_path = %(here)s/src", f"prepend_sys_path = {ROOT / 'src'}")
    text = text.replace("hooks = manifest", "hooks =")  # no manifest writes into the copy
    ini = folder.parent / "alembic.ini"
    ini.write_text(text)
    return ini


def tls(env: Any, url: Any) -> Any:
    """The database over TLS (verify-full), as the handler connects: every subject alike."""
    return url.set(host="localhost", query={"sslmode": "verify-full",
                                            "sslrootcert": str(env.ca)})


def timed_child(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run ``cmd``; return its wall time and the peak RSS it reported (KiB, 0 if none)."""
    import time

    began = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {done.stderr[-2000:]}")
    rss = 0
    for line in done.stderr.splitlines():
        if line.startswith('{"rss_kib"'):
            rss = json.loads(line)["rss_kib"]
    return elapsed, rss


def series(env: Any, counts: list[int], rounds: int) -> dict[str, Any]:
    """Full upgrade base->head at each N: ours / Alembic / psql, and the handler at max N."""
    from alquimista_schema import command
    from alquimista_schema.connect.database import parse_url

    head = command.heads()[0]
    results: dict[str, Any] = {}
    psql = shutil.which("psql") or "psql"
    for count in counts:
        folder = scratch_scripts(count, head)
        ini = alembic_ini(folder)
        sql_file = folder.parent / "upgrade.sql"
        # This checkout's src first: a bench run from another worktree measures that code.
        base_env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
                    "ALQUIMISTA_DEVDB": "off"}
        subprocess.run([sys.executable, "-c", CHILD, str(folder), "cli", "sql", "head"],
                       env=base_env, cwd=ROOT, check=True,
                       stdout=sql_file.open("w"), stderr=subprocess.DEVNULL)

        def ours(folder: Path = folder, base_env: dict[str, str] = base_env) -> tuple[float, int]:
            url = parse_url(tls(env, env.database())).render_as_string(hide_password=False)
            return timed_child([sys.executable, "-c", CHILD, str(folder), "cli", "upgrade",
                                "head", "--url", url], base_env)

        def alembic(ini: Path = ini, base_env: dict[str, str] = base_env) -> tuple[float, int]:
            url = parse_url(tls(env, env.database())).render_as_string(hide_password=False)
            return timed_child([sys.executable, "-c", ALEMBIC_CHILD, "-c", str(ini), "upgrade",
                                "head"], {**base_env, "DATABASE_URL": url})

        def by_psql(sql_file: Path = sql_file) -> tuple[float, int]:
            url = tls(env, env.database()).set(drivername="postgresql").render_as_string(
                hide_password=False)
            return timed_child([psql, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(sql_file),
                                url], dict(os.environ))

        subjects = {"ours": ours, "alembic": alembic, "psql": by_psql}
        if count == max(counts):
            subjects["handler"] = lambda folder=folder, base_env=base_env: _handler(
                env, folder, base_env)
            subjects["handler_ext"] = lambda folder=folder, base_env=base_env: _handler(
                env, folder, base_env, extension=True)
            subjects["ours_secret"] = lambda folder=folder, base_env=base_env: _cli_secret(
                env, folder, base_env)
        medians = _alternate(subjects, rounds)
        for name, (seconds, rss) in medians.items():
            results[f"upgrade_{count}_{name}_s"] = seconds
            results[f"upgrade_{count}_{name}_rss_kib"] = rss
        results[f"upgrade_{count}_ratio_vs_alembic"] = medians["ours"][0] / medians["alembic"][0]
        results[f"upgrade_{count}_ratio_vs_psql"] = medians["ours"][0] / medians["psql"][0]
        if "handler" in medians:
            results[f"upgrade_{count}_handler_vs_cli"] = medians["handler"][0] / medians["ours"][0]
            results[f"upgrade_{count}_handler_ext_vs_cli"] = (medians["handler_ext"][0]
                                                              / medians["ours"][0])
            results[f"upgrade_{count}_handler_vs_cli_secret"] = (medians["handler"][0]
                                                                 / medians["ours_secret"][0])
        shutil.rmtree(folder.parent, ignore_errors=True)
    return results


def _cli_secret(env: Any, folder: Path, base_env: dict[str, str]) -> tuple[float, int]:
    """The CLI with ``--secret-arn``: the secret through boto3, as the handler's is."""
    url = env.database()
    cli_env = {**base_env, **env.aws_env, "DB_SSLROOTCERT": str(env.ca)}
    return timed_child([sys.executable, "-c", CHILD, str(folder), "cli", "upgrade", "head",
                        "--secret-arn", env.secret_for(url)], cli_env)


def _handler(env: Any, folder: Path, base_env: dict[str, str], *,
             extension: bool = False) -> tuple[float, int]:
    """The handler's full upgrade; the secret through boto3, or the extension (stand-in)."""
    from tests.support import extension_standin

    url = env.database()
    handler_env = {**base_env, **env.aws_env, "DB_SECRET_ARN": env.secret_for(url),
                   "DB_SSLROOTCERT": str(env.ca)}
    if not extension:
        return timed_child([sys.executable, "-c", CHILD, str(folder), "handler"], handler_env)
    endpoint = env.aws_env["AWS_ENDPOINT_URL_SECRETS_MANAGER"]
    with extension_standin.serve(endpoint, token="scale") as ext:  # noqa: S106 (a stand-in)
        handler_env.update({"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(ext.port),
                            "AWS_SESSION_TOKEN": "scale"})
        return timed_child([sys.executable, "-c", CHILD, str(folder), "handler"], handler_env)


def _alternate(subjects: dict[str, Any], rounds: int) -> dict[str, tuple[float, int]]:
    """Run every subject ``rounds`` times, rotating the order; medians of time and RSS."""
    times: dict[str, list[float]] = {name: [] for name in subjects}
    rss: dict[str, list[int]] = {name: [] for name in subjects}
    names = list(subjects)
    for i in range(rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            seconds, kib = subjects[name]()
            times[name].append(seconds)
            rss[name].append(kib)
    return {name: (statistics.median(times[name]), int(statistics.median(rss[name])))
            for name in names}


def rows(r: dict[str, Any], counts: list[int]) -> list[tuple[str, float, str, str]]:
    """Table rows for bench/run.py's summary."""
    out = []
    for c in counts:
        # The goals are set at 1,000 revisions; other sizes are shown for the trend.
        goal_alembic = "<= 1.0" if c == 1000 else "(info)"
        detail = (f"{r[f'upgrade_{c}_ours_s'] * 1000:.0f} ms vs alembic "
                  f"{r[f'upgrade_{c}_alembic_s'] * 1000:.0f} ms, psql "
                  f"{r[f'upgrade_{c}_psql_s'] * 1000:.0f} ms")
        out.append((f"upgrade, {c:,} revisions / alembic", r[f"upgrade_{c}_ratio_vs_alembic"],
                    goal_alembic, detail))
        out.append((f"upgrade, {c:,} revisions / psql -f", r[f"upgrade_{c}_ratio_vs_psql"],
                    "(info)", "offline SQL: for review, not an engine"))
        if f"upgrade_{c}_handler_vs_cli" in r:
            out.append((f"handler (extension), {c:,} / CLI",
                        r[f"upgrade_{c}_handler_ext_vs_cli"], "<= 1.1",
                        f"{r[f'upgrade_{c}_handler_ext_s'] * 1000:.0f} ms"))
            out.append((f"handler (boto3), {c:,} / CLI --secret-arn",
                        r[f"upgrade_{c}_handler_vs_cli_secret"], "(info)",
                        f"{r[f'upgrade_{c}_ours_secret_s'] * 1000:.0f} ms: the CLI fetching the "
                        "same secret through boto3"))
            out.append((f"handler (boto3), {c:,} / CLI", r[f"upgrade_{c}_handler_vs_cli"],
                        "<= 1.1", f"{r[f'upgrade_{c}_handler_s'] * 1000:.0f} ms; peak RSS "
                        f"ours {r[f'upgrade_{c}_ours_rss_kib'] / 1024:.0f} MiB, alembic "
                        f"{r[f'upgrade_{c}_alembic_rss_kib'] / 1024:.0f} MiB, handler "
                        f"{r[f'upgrade_{c}_handler_rss_kib'] / 1024:.0f} MiB"))
    return out
