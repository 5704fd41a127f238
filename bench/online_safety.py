"""Online safety: apply the CHECK revisions under write traffic on 1,000,000 rows.

Run with ``make bench-online`` (a minute or two). With ``dry_run_log`` holding
ROWS rows and a writer inserting continuously, it applies 018 (NOT VALID) and 019
(VALIDATE) and records the writer's longest stall, which must stay below the
configured ``lock_timeout``. Then, with a long reader holding the table, it shows that
a migration which cannot get its lock in time fails cleanly (the database stays where
it was) instead of queueing, with every writer behind it, for as long as the reader
lasts (retries off). Last, a reader that holds the table longer than ``lock_timeout`` but
shorter than the retries' total: the upgrade is retried at the revision and completes,
the writer's longest stall stays within ``lock_timeout``, and the run's warnings name the
reader's pid and application_name. Writes ``bench/results/online_safety.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
ROWS = int(os.environ.get("ONLINE_ROWS", "1000000"))
LOCK_TIMEOUT = "2s"
LOCK_TIMEOUT_S = 2.0


class Writer(threading.Thread):
    """Insert one decision at a time, as the agent does, timing each insert."""

    def __init__(self, dsn: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg2.connect(**dsn)
        self.conn.autocommit = True
        self.latencies: list[tuple[float, float]] = []  # (start, seconds)
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with self.conn.cursor() as cur:
            while not self.stop.is_set():
                began = time.perf_counter()
                try:
                    cur.execute("INSERT INTO dry_run_log (tenant_id, canal_decidido, "
                                "motivo_decisao, ambiente) VALUES (gen_random_uuid(), "
                                "'whatsapp', 'online-bench', 'prod')")
                except psycopg2.Error:
                    self.errors += 1
                self.latencies.append((began, time.perf_counter() - began))

    def window(self, start: float, end: float) -> list[float]:
        return [d for s, d in self.latencies if start <= s <= end or s <= start <= s + d]


def main() -> int:
    from alquimista_schema import command
    from alquimista_schema.connect.local import DevDatabase
    from alquimista_schema.errors import LockTimeout, MigrationFailed

    root = Path(tempfile.mkdtemp(prefix="alq-online-"))
    server = DevDatabase(root, dbname="online")
    url = server.start()
    dsn: dict[str, Any] = {"host": url.host, "port": url.port, "user": url.username,
           "password": url.password, "dbname": url.database}
    results: dict[str, Any] = {"rows": ROWS, "lock_timeout": LOCK_TIMEOUT}
    try:
        command.upgrade(url, "017")
        seed = psycopg2.connect(**dsn)
        seed.autocommit = True
        began = time.perf_counter()
        with seed.cursor() as cur:
            cur.execute(
                "INSERT INTO dry_run_log (tenant_id, canal_decidido, motivo_decisao, ambiente, "
                "created_at) SELECT gen_random_uuid(), (ARRAY['whatsapp','email','calendar',"
                "'none'])[1 + g %% 4], 'seed', (ARRAY['dev','prod'])[1 + g %% 2], "
                "now() - g * interval '1 second' FROM generate_series(1, %s) g", (ROWS,))
            cur.execute("ANALYZE dry_run_log")
        results["seed_s"] = time.perf_counter() - began

        # 1. The CHECK revisions under continuous writes.
        writer = Writer(dsn)
        writer.start()
        time.sleep(1.0)
        steps: list[dict[str, Any]] = []
        run = command.Run(lock_timeout=LOCK_TIMEOUT)
        for target in ("018", "019"):
            began = time.perf_counter()
            command.upgrade(url, target, run=run)
            ended = time.perf_counter()
            window = writer.window(began, ended)
            steps.append({"revision": target, "duration_s": ended - began,
                          "writes_during": len(window),
                          "writer_max_stall_ms": max(window, default=0) * 1000})
        time.sleep(0.5)
        writer.stop.set()
        writer.join()
        all_lat = [d for _, d in writer.latencies]
        results["steps"] = steps
        results["writer_inserts"] = len(all_lat)
        results["writer_errors"] = writer.errors
        results["writer_p50_ms"] = statistics.median(all_lat) * 1000
        results["writer_max_stall_ms"] = max(all_lat) * 1000
        results["stall_below_lock_timeout"] = max(all_lat) < LOCK_TIMEOUT_S

        # 2. A long reader holds the table: the migration gives up after lock_timeout.
        command.downgrade(url, "017")
        reader = psycopg2.connect(**dsn)
        with reader.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT count(*) FROM dry_run_log")  # ACCESS SHARE until the end
        writer = Writer(dsn)
        writer.start()
        time.sleep(0.5)
        began = time.perf_counter()
        try:
            command.upgrade(url, "018", run=command.Run(lock_timeout=LOCK_TIMEOUT,
                                                         lock_retries=0))
            outcome = "applied (unexpected)"
        except (MigrationFailed, LockTimeout) as exc:
            outcome = str(exc)
        ended = time.perf_counter()
        time.sleep(0.5)
        writer.stop.set()
        writer.join()
        reader.rollback()
        reader.close()
        window = writer.window(began, ended)
        results["blocked"] = {
            "migration_outcome": outcome,
            "gave_up_after_s": ended - began,
            "revision_after": command.current(url),
            "writer_max_stall_ms": max(window, default=0) * 1000,
            "writer_errors": writer.errors,
        }
        results["retried"] = _retried(url, dsn, run)
    finally:
        server.remove()
        shutil.rmtree(root, ignore_errors=True)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "online_safety.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"dry_run_log: {ROWS:,} rows (seeded in {results['seed_s']:.1f} s); "
          f"lock_timeout {LOCK_TIMEOUT}")
    for s in results["steps"]:
        print(f"  {s['revision']}: {s['duration_s'] * 1000:8.0f} ms, {s['writes_during']:5d} "
              f"concurrent inserts, writer's longest stall {s['writer_max_stall_ms']:.1f} ms")
    print(f"  writer: {results['writer_inserts']} inserts, median "
          f"{results['writer_p50_ms']:.2f} ms, longest {results['writer_max_stall_ms']:.1f} ms, "
          f"errors {results['writer_errors']} -> below lock_timeout: "
          f"{results['stall_below_lock_timeout']}")
    b = results["blocked"]
    print(f"  with a long reader holding the table: gave up after {b['gave_up_after_s']:.2f} s "
          f"({b['migration_outcome'][:90]}...), still at {b['revision_after']}, writer's "
          f"longest stall {b['writer_max_stall_ms']:.0f} ms")
    r = results["retried"]
    print(f"  with a reader holding the table {READER_HOLDS_S:.0f} s: applied after "
          f"{r['attempts']} failed attempt(s) in {r['duration_s']:.1f} s, now at "
          f"{r['revision_after']}, writer's longest stall {r['writer_max_stall_ms']:.0f} ms; "
          f"reader pid {r['reader_pid']} named: {r['reader_named']}")
    ok = results["stall_below_lock_timeout"] and b["revision_after"] == "017" \
        and b["writer_max_stall_ms"] < LOCK_TIMEOUT_S * 1000 + 500 \
        and r["revision_after"] == "018" and r["reader_named"] \
        and r["writer_max_stall_ms"] < LOCK_TIMEOUT_S * 1000 + 500
    return 0 if ok else 1


READER_HOLDS_S = 5.0


def _retried(url: Any, dsn: dict[str, Any], run: Any) -> dict[str, Any]:
    """A reader holding the table READER_HOLDS_S seconds (more than lock_timeout, less than
    the retries' total), under writes: the upgrade to 018 is retried and completes."""
    from alquimista_schema import command

    reader = psycopg2.connect(**dsn, application_name="bench-reader")
    with reader.cursor() as cur:
        cur.execute("SELECT count(*) FROM dry_run_log")  # ACCESS SHARE until the rollback
    pid = reader.get_backend_pid()
    writer = Writer(dsn)
    writer.start()
    time.sleep(0.5)
    letting_go = threading.Timer(READER_HOLDS_S, reader.rollback)
    letting_go.start()
    began = time.perf_counter()
    result = command.upgrade(url, "018", run=run)
    ended = time.perf_counter()
    letting_go.join()
    time.sleep(0.5)
    writer.stop.set()
    writer.join()
    reader.close()
    window = writer.window(began, ended)
    named = any(f"pid {pid}" in w and "'bench-reader'" in w for w in result.warnings)
    return {"attempts": len(result.attempts), "duration_s": ended - began,
            "revision_after": command.current(url), "reader_pid": pid,
            "reader_named": named, "writer_max_stall_ms": max(window, default=0) * 1000,
            "writer_errors": writer.errors}


if __name__ == "__main__":
    sys.exit(main())
