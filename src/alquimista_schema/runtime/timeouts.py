"""The migration transactions' timeouts, set on the run's session and put back after.

The values were read in the one duration grammar (``durations``) at the run's door.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


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
