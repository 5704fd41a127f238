"""What AWS itself refuses, checked here first, each rule next to the sentence of AWS's
documentation it comes from: a context CloudFormation (or Lambda, at run time) would refuse
is refused before anything is synthesized, with the key and the fix.

Each ``*_problem`` function returns why a value is wrong (to follow ``KEY=VALUE``), or None.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from alquimista_deploy import spec

# --- EventBridge: "Schedule expressions for rules" -----------------------------------------

SCHEDULE_EXAMPLE = "for example rate(1 day), rate(6 hours) or cron(0 3 * * ? *) (03:00 UTC)"
# "rate(value unit) ... value: A positive number. unit: The unit of time ... Valid values:
# minute | minutes | hour | hours | day | days ... If the value is equal to 1, then the unit
# must be singular. If the value is greater than 1, the unit must be plural."
RATE = re.compile(r"rate\(([0-9]+) ([a-z]+)\)")
RATE_UNITS = ("minute", "hour", "day")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True)
class CronField:
    """One row of the doc's table: "Field | Values | Wildcards"."""

    name: str
    low: int
    high: int
    wildcards: str
    names: tuple[str, ...] = ()
    """Names standing for low, low+1, ... (JAN-DEC is 1-12, SUN-SAT is 1-7)."""
    special: str = ""
    """The L, W and # forms the field admits, as a pattern of ``V`` (a value)."""


# "Cron expressions have six required fields, which are separated by white space."
CRON_FIELDS = (
    CronField("Minutes", 0, 59, ",-*/"),
    CronField("Hours", 0, 23, ",-*/"),
    # "The L wildcard in the Day-of-month or Day-of-week fields specifies the last day of the
    # month or week." "The W wildcard in the Day-of-month field specifies a weekday."
    CronField("Day-of-month", 1, 31, ",-*?/LW", special=r"L|LW|(?P<v>[0-9]+)W"),
    CronField("Month", 1, 12, ",-*/", MONTHS),
    # "The # wildcard in the Day-of-week field specifies a certain instance of the specified
    # day of the week within a month. For example, 3#2 would be the second Tuesday".
    CronField("Day-of-week", 1, 7, ",-*?L#", DAYS,
              special=r"L|(?P<v>[0-9A-Za-z]+)L|(?P<v2>[0-9A-Za-z]+)#[1-5]"),
    CronField("Year", 1970, 2199, ",-*/"),
)
DAY_FIELDS = (2, 4)


def schedule_problem(expression: str) -> str | None:
    """Why EventBridge would refuse ``expression`` as a rule's schedule, or None."""
    if expression.startswith("rate("):
        why = _rate_problem(expression)
    elif expression.startswith("cron(") and expression.endswith(")"):
        why = _cron_problem(expression[5:-1].split())
    else:
        why = "neither rate(value unit) nor cron(six fields)"
    return f"is not an EventBridge schedule: {why}; {SCHEDULE_EXAMPLE}" if why else None


def _rate_problem(expression: str) -> str | None:
    found = RATE.fullmatch(expression)
    if not found or found[2].removesuffix("s") not in RATE_UNITS:
        return "rate needs a whole number and minute(s), hour(s) or day(s), as rate(5 minutes)"
    value, unit = int(found[1]), found[2]
    if value < 1:
        return "a rate's value must be a positive whole number"
    right = unit.removesuffix("s") + ("" if value == 1 else "s")
    if unit != right:
        return (f"the unit is singular for 1 and plural otherwise: rate({value} {right}), "
                f"not rate({found[1]} {unit})")
    return None


def _cron_problem(fields: list[str]) -> str | None:
    if len(fields) != len(CRON_FIELDS):
        return (f"cron needs six fields (Minutes Hours Day-of-month Month Day-of-week Year), "
                f"not {len(fields)}")
    # "You can't specify the Day-of-month and Day-of-week fields in the same cron expression.
    # If you specify a value or a * (asterisk) in one of the fields, you must use a ?
    # (question mark) in the other."
    if [fields[i] for i in DAY_FIELDS].count("?") != 1:
        return "exactly one of Day-of-month and Day-of-week must be ? (the other gives the days)"
    for field, text in zip(CRON_FIELDS, fields, strict=True):
        why = _field_problem(field, text)
        if why:
            return f"{field.name} {text!r}: {why}"
    return None


def _field_problem(field: CronField, text: str) -> str | None:
    allowed = f"values {field.low}-{field.high}" + (
        f" or {field.names[0]}-{field.names[-1]}" if field.names else "") + \
        f", wildcards {' '.join(field.wildcards)}"
    used = set(re.sub(r"[A-Za-z0-9]", "", text))
    if text == "?" and "?" in field.wildcards:
        return None
    if used - set(field.wildcards) - {"?"} or "?" in used:
        return f"allows {allowed}"
    # "If you use the '#' character, you can define only one expression in the day-of-week
    # field. For example, "3#1,6#3" is not valid because it is interpreted as two
    # expressions." Where the page is silent, the syntax it documents (Quartz's) says the
    # same of L and W: "Support for specifying 'L' with other days ... is not implemented".
    items = text.split(",")
    if len(items) > 1 and any(set(_unnamed(field, item)) & set("LW#") for item in items):
        return "L, W and # admit no other item in the field"
    if not all(_item_ok(field, item) for item in items):
        return f"allows {allowed}"
    return None


def _unnamed(field: CronField, item: str) -> str:
    """The item without the field's names (JUL, WED hold an L and a W of no meaning)."""
    for name in field.names:
        item = item.replace(name, "")
    return item


def _item_ok(field: CronField, item: str) -> bool:
    """One comma-separated item: *, a value, a range, a step, or the field's L/W/# form."""
    special = re.fullmatch(field.special, item) if field.special else None
    if special:
        return all(_value(field, v) is not None for v in special.groupdict().values() if v)
    base, slash, step = item.partition("/")
    # A step is at most the field's highest value: Quartz, whose syntax the page documents,
    # refuses "incr > 59" for minutes, "> 23" for hours, "> 31", "> 12", "> 7" for the rest.
    if slash and not (_digits(step) and 0 < int(step) <= field.high
                      and "/" in field.wildcards):
        return False
    if base == "*":
        return "*" in field.wildcards
    low, dash, high = base.partition("-")
    if dash and "-" not in field.wildcards:
        return False
    first, last = _value(field, low), _value(field, high) if dash else None
    return first is not None and (not dash or last is not None)


def _digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() (and \\d) also take other scripts' digits."""
    return text.isascii() and text.isdigit()


def _value(field: CronField, text: str) -> int | None:
    """A field's value as a number (names count from the field's lowest), or None."""
    number = (field.names.index(text.upper()) + field.low if text.upper() in field.names
              else int(text) if _digits(text) else None)
    return number if number is not None and field.low <= number <= field.high else None


# --- Lambda -------------------------------------------------------------------------------

# Lambda API reference, Environment: "Key pattern: [a-zA-Z]([a-zA-Z0-9_])+" (so at least two
# characters: a one-letter name is refused).
ENV_KEY = re.compile(r"[a-zA-Z]([a-zA-Z0-9_])+")
# Lambda's "Configuring reserved concurrency": "You can reserve up to the Unreserved account
# concurrency value that is shown, minus 100 for functions that don't have reserved
# concurrency." A reservation past that fails the deployment ("Specified
# ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution
# below its minimum value of [100]"): reservedConcurrency=none is the fix for an account with
# a low quota. And "To throttle a function, set the reserved concurrency to zero. This stops
# any events from being processed": so 0 is refused (reader.concurrency).

# Extension modules are named NAME.cpython-XY-PLATFORM.so (PEP 3149; the manylinux wheels'
# PLATFORM is MACHINE-linux-gnu): the runtime's CPython loads only its own XY, on its own
# machine. (A stable-ABI NAME.abi3.so names no version and is not judged here.)
EXTENSION = re.compile(r"\.cpython-([0-9])([0-9]+)-([^./]+)\.so$")
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}
"""Lambda's architecture name -> the machine name in an extension module's tag."""


def bundle_extensions_problem(names: set[str]) -> str | None:
    """Compiled extension modules built for another CPython or machine than the function's
    (spec.RUNTIME on spec.ARCHITECTURE): the import fails on the first event, not here."""
    want = (spec.PYTHON_VERSION, f"{MACHINES[spec.ARCHITECTURE]}-linux-gnu")
    tags = {name: found for name in names if (found := EXTENSION.search(name))}
    wrong = sorted(name for name, tag in tags.items() if (f"{tag[1]}.{tag[2]}", tag[3]) != want)
    if not wrong:
        return None
    found = tags[wrong[0]]
    return (f"holds extension modules built for CPython {found[1]}.{found[2]} on {found[3]} "
            f"({', '.join(wrong[:3])}{', ...' if len(wrong) > 3 else ''}), but the function "
            f"runs {spec.RUNTIME} on {spec.ARCHITECTURE}")


# --- Secrets Manager ----------------------------------------------------------------------

# "Secrets Manager automatically adds a hyphen and six random characters after the secret
# name at the end of the ARN." A grant on an ARN without them matches no secret.
SECRET_SUFFIX = re.compile(r":secret:.+-[A-Za-z0-9]{6}$")
FULL_ARN_COMMAND = "aws secretsmanager describe-secret --secret-id NAME --query ARN"
# A secret RDS manages (ManageMasterUserPassword; CloudFormation's MasterUserSecret, "the
# secret managed by RDS in AWS Secrets Manager for the master user password") is named
# rds!cluster-... (or rds!db-...) and holds username and password only: no host, no database.
RDS_MANAGED = ":secret:rds!"


def secret_arn_problem(arn: str) -> str | None:
    """An ARN with its name only: the role's grant on that exact ARN would match nothing."""
    if SECRET_SUFFIX.search(arn):
        return None
    return ("ends without the hyphen and six random characters Secrets Manager appends to a "
            "secret's name, so the grant on this exact ARN would match no secret: pass the "
            f"full ARN (`{FULL_ARN_COMMAND}`)")


def rds_managed(arn: str | None) -> bool:
    """A secret RDS manages (ManageMasterUserPassword): username and password only."""
    return bool(arn) and RDS_MANAGED in str(arn)


# Key -> the rule its value must also pass once it has the key's format (reader.text).
RULES: dict[str, Callable[[str], str | None]] = {
    "driftSchedule": schedule_problem,
    "dbSecretArn": secret_arn_problem,
}
