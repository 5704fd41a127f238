"""The migration transactions' timeouts, set on the run's session and put back after.

The values follow the one duration grammar (``durations``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alquimista_schema.durations import setting


def default_timeouts(lock_timeout: str | None, statement_timeout: str | None) -> dict[str, str]:
    """The run's timeouts: given (its door read them), else the defaults."""
    return {"lock_timeout": setting("lock_timeout", lock_timeout),
            "statement_timeout": setting("statement_timeout", statement_timeout)}


@contextmanager
def session_timeouts(connection: Any, settings: dict[str, str], *,
                     restore: bool = True) -> Iterator[None]:
    """Apply timeouts for the migration transactions, then restore the previous values.

    With one transaction per revision a ``SET LOCAL`` would lapse after the first
    revision, so the settings are made for the session and put back afterwards.
    """
    external = connection.in_transaction()
    previous = {name: connection.exec_driver_sql(f"SHOW {name}").scalar()
                for name in settings} if restore else {}
    for name, value in settings.items():
        connection.exec_driver_sql(f"SELECT set_config('{name}', %(v)s, false)", {"v": value})
    if not external:
        connection.commit()
    try:
        yield
    finally:
        if not connection.closed and not connection.invalidated:
            if connection.in_transaction() and not external:
                connection.rollback()
            for name, prior in previous.items():
                connection.exec_driver_sql(
                    f"SELECT set_config('{name}', %(v)s, false)", {"v": str(prior)})
            if not external:
                connection.commit()
