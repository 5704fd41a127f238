"""Names read from the process environment, normalised once for every door."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from alquimista_schema.errors import ConfigurationError

T = TypeVar("T")

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


# name -> (default, lowest, highest), in seconds
NUMBERS: dict[str, tuple[float | None, float, float]] = {
    "CONNECT_TIMEOUT_SECONDS": (10, 2, 300),
    "CONNECT_BUDGET_SECONDS": (45, 0, 900),
    "DEADLINE_MARGIN_SECONDS": (10, 1, 120),
    "LOCK_WAIT_SECONDS": (None, 0, 900),
}


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
        """Read the settings; raise ConfigurationError naming every value that is wrong."""
        settings, problems = cls.read(env)
        if problems:
            raise ConfigurationError("; ".join(problems.values()))
        return settings

    @classmethod
    def problems(cls, env: Mapping[str, str]) -> dict[str, str]:
        """Each variable the runner would refuse, with why (empty when all are right).

        The one rule for both callers: the function at run time (``from_env``) and the
        CDK app at synth time (deploy/cdk), which refuses what the function would.
        """
        return cls.read(env)[1]

    @classmethod
    def read(cls, env: Mapping[str, str]) -> tuple[Settings, dict[str, str]]:
        """The settings (defaults where a value is wrong) and the problems, by variable."""
        problems: dict[str, str] = {}

        def check(name: str, read: Callable[[], T], default: T) -> T:
            try:
                return read()
            except ConfigurationError as exc:
                problems[name] = str(exc)
                return default

        environment = check("ENVIRONMENT", lambda: environment_name(env.get("ENVIRONMENT")),
                            "dev")
        policy = check("LINT_POLICY", lambda: _lint_policy(env.get("LINT_POLICY"), environment),
                       "warn")
        numbers: dict[str, float | None] = {}
        for name, (default, low, high) in NUMBERS.items():
            numbers[name] = check(name, partial(_number, env, name, default, low, high),
                                  default)
        return cls(secret_id=env.get("DB_SECRET_ARN") or None, environment=environment,
                   lint_policy=policy,
                   connect_timeout=int(numbers["CONNECT_TIMEOUT_SECONDS"] or 10),
                   connect_budget=numbers["CONNECT_BUDGET_SECONDS"] or 0.0,
                   margin=numbers["DEADLINE_MARGIN_SECONDS"] or 10.0,
                   lock_wait=numbers["LOCK_WAIT_SECONDS"]), problems


def _lint_policy(value: str | None, environment: str) -> str:
    """``enforce``, ``warn`` or ``off`` (any case); unset is enforce in prod, else warn."""
    policy = value or ("enforce" if environment == "prod" else "warn")
    if policy.lower() not in ("enforce", "warn", "off"):
        raise ConfigurationError(f"LINT_POLICY must be enforce, warn or off, not "
                                 f"{policy[:40]!r}")
    return policy.lower()
