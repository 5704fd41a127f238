"""Ctrl-C and SIGTERM while revisions run: cancel the statement, end with a true record.

A Python signal handler runs only between bytecodes, so it cannot stop a statement that
psycopg2 is waiting on: Ctrl-C waited for the statement, and SIGTERM (what CI and a
container stop send) killed the process mid-revision. While revisions are applied, the
two signals are blocked in the calling (main) thread and taken by a watcher thread
(``sigtimedwait``), which marks the run and cancels the work session's statement
(psycopg2's ``cancel()``, meant for use from another thread). The statement fails, the
revision rolls back like any failing one, no later revision starts, and the run ends
with ``INTERRUPTED`` and its audit row. Outside the main thread (a host's worker) nothing
is changed: signals are the host's.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from alquimista_schema.errors import Interrupted
from alquimista_schema.runtime.run import Progress

SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
_WATCH_SECONDS = 0.1


@contextmanager
def cancelling(driver_conn: Any, progress: Progress) -> Iterator[threading.Event]:
    """While inside: a SIGINT or SIGTERM cancels ``driver_conn``'s statement, sets
    ``progress.stop_signal`` and the yielded event (which a wait, such as the snapshot's,
    watches: see :func:`pause`); on the way out, the signals are as they were."""
    stopping = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stopping
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            caught = signal.sigtimedwait(SIGNALS, _WATCH_SECONDS)
            if caught is not None and progress.stop_signal is None:
                progress.stop_signal = caught.si_signo
                stopping.set()
                with contextlib.suppress(Exception):  # nothing running: nothing to cancel
                    driver_conn.cancel()

    watcher = threading.Thread(target=watch, name="alquimista-interrupts", daemon=True)
    watcher.start()
    try:
        yield stopping
    finally:
        stop.set()
        watcher.join()
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def stopped(progress: Progress, where: str) -> Interrupted:
    """The error of a run a signal stopped ``where`` (before or during a revision)."""
    name = signal.Signals(progress.stop_signal or signal.SIGTERM).name
    return Interrupted(f"interrupted by {name} {where}; the database is at "
                       f"{progress.to_revision or 'base'} (every revision before it "
                       "committed, none after it started)")


def pause(stopping: threading.Event, progress: Progress, where: str) -> Callable[[float], None]:
    """A ``time.sleep`` that a signal ends at once, raising :class:`Interrupted`."""
    def sleep(seconds: float) -> None:
        if stopping.wait(seconds):
            raise stopped(progress, where)
    return sleep
