"""Names read from the process environment, normalised once for every door."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from alquimista_schema.errors import ConfigurationError

ENVIRONMENTS = ("dev", "staging", "prod")
_ALIASES = {"production": "prod"}


def environment_name(value: str | None) -> str:
    """Return ``dev``, ``staging`` or ``prod`` for ``ENVIRONMENT`` (unset is dev); else raise.

    Case does not matter and ``production`` means ``prod``: a guard that only knew
    the exact string ``prod`` let ``Production`` through unguarded.
    """
    if value is None or not value.strip():
        return "dev"
    name = value.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in ENVIRONMENTS:
        raise ConfigurationError(
            f"ENVIRONMENT must be one of dev, staging, prod (or production), not {value!r}")
    return name


# --- the Lambda runner's settings (its function's environment) ---------------------

def _number(env: Mapping[str, str], name: str, default: float | None, low: float,
            high: float) -> float | None:
    """Read a number of seconds: finite and within [low, high], else BAD_CONFIG.

    A wrong value is never silently replaced by the default, and 0 is no "forever"
    (libpq's meaning for a connect timeout of 0).
    """
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigurationError(f"{name} must be a number of seconds from {low:g} to "
                                 f"{high:g}, not {raw[:40]!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """The function's configuration, from its environment, validated."""

    secret_id: str | None
    environment: str = "dev"
    connect_timeout: int = 10
    connect_budget: float = 45.0
    margin: float = 10.0
    lock_wait: float | None = None
    lint_policy: str = "warn"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the settings; raise ConfigurationError naming any value that is wrong."""
        environment = environment_name(env.get("ENVIRONMENT"))
        policy = (env.get("LINT_POLICY") or ("enforce" if environment == "prod" else "warn"))
        if policy.lower() not in ("enforce", "warn", "off"):
            raise ConfigurationError(f"LINT_POLICY must be enforce, warn or off, not "
                                     f"{policy[:40]!r}")
        wait = _number(env, "LOCK_WAIT_SECONDS", None, 0, 900)
        return cls(
            secret_id=env.get("DB_SECRET_ARN") or None,
            environment=environment,
            lint_policy=policy.lower(),
            connect_timeout=int(_number(env, "CONNECT_TIMEOUT_SECONDS", 10, 2, 300)
                                or 10),
            connect_budget=_number(env, "CONNECT_BUDGET_SECONDS", 45, 0, 900) or 0.0,
            margin=_number(env, "DEADLINE_MARGIN_SECONDS", 10, 1, 120) or 10.0,
            lock_wait=wait,
        )

