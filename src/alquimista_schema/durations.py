"""PostgreSQL durations (250ms, 5s, 2min, 1h, 0): the one grammar for every timeout.

A bare number is milliseconds, as PostgreSQL reads it for ``lock_timeout`` and
``statement_timeout``; 0 means "no limit" there.
"""

from __future__ import annotations

import re

from alquimista_schema.errors import ConfigurationError

# ASCII only: ``\d`` would take Arabic-Indic digits, which PostgreSQL refuses.
PATTERN = re.compile(r"([0-9]{1,10})[ \t]*(ms|s|min|h)?")
_SECONDS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, None: 0.001}
_MAX_MS = 2_147_483_647  # PostgreSQL's limit for these settings (INT_MAX milliseconds)


class Duration(str):
    """A duration this grammar has read (only :func:`validate` makes one): it travels from
    the door that read it to ``SET`` as it is, never parsed again."""

    __slots__ = ()


def validate(name: str, value: str) -> Duration:
    """Return ``value`` stripped if PostgreSQL accepts it as a duration, else raise."""
    text = value.strip() if isinstance(value, str) else ""
    match = PATTERN.fullmatch(text)
    if match is None or int(match[1]) * _SECONDS[match[2]] * 1000 > _MAX_MS:
        raise ConfigurationError(
            f"{name} must look like 250ms, 5s, 2min, 1h or 0 (at most 24 days), not {value!r}")
    return Duration(text)


def seconds(value: str) -> float:
    """Return the seconds in a duration (``0`` is 0: callers decide what "no limit" means)."""
    match = PATTERN.fullmatch(validate("duration", value))
    assert match is not None  # validate() matched it
    return int(match[1]) * _SECONDS[match[2]]


def milliseconds(value: float) -> str:
    """Render ``value`` seconds as a PostgreSQL duration, at least 1ms."""
    return f"{max(int(value * 1000), 1)}ms"


# --- the migration transactions' timeouts -------------------------------------------

DEFAULT_LOCK_TIMEOUT = Duration("5s")
DEFAULT_STATEMENT_TIMEOUT = Duration("15min")
DEFAULTS = {"lock_timeout": DEFAULT_LOCK_TIMEOUT, "statement_timeout": DEFAULT_STATEMENT_TIMEOUT}


def setting(name: str, *preferred: str | None, configured: str | None = None) -> Duration:
    """The first of ``preferred``, else ``configured``, else the default; read here unless
    it was read already (a Duration). The doors put what they read (an option, ``-x``,
    ALQUIMISTA_<NAME> through settings.py) in ``preferred``, in their order: nothing here
    reads the environment."""
    value = next((v for v in preferred if v), None) or configured or DEFAULTS[name]
    return value if isinstance(value, Duration) else validate(name, str(value))
