"""What AWS refuses, as data: each rule with the sentence of AWS's documentation (or the
botocore service model) it comes from, and a layer that refuses such calls the way AWS does.

moto accepts names, schedules and calls AWS refuses (a 139-character snapshot identifier, a
tag key ``aws:x``), so a suite against moto alone is green where a real account fails. Here:

* ``RULES``: the rules the botocore model lacks (RDS keeps its constraints in prose), each a
  ``Rule`` citing its document and shape, with examples it refuses and accepts. Rules whose
  constraint the model does hold (``from_model``) are listed too, for their examples and
  citation; they are enforced by ``model_problems``, generically, for every operation.
* ``model_problems``: the model's ``min``/``max``/``pattern``/``enum`` on every input shape.
  botocore's ParamValidator checks types, required members and ``min`` only; AWS checks all.
* ``refusal(service, operation, params)``: what AWS would answer (code, message, status), or
  None; ``install()``: every botocore client made afterwards in this process sends a call
  that breaks a rule nowhere and gets that answer, parsed by botocore from the body AWS
  sends (ErrorResponse XML for RDS, ``__type`` JSON for Secrets Manager, ...), so the
  package's translation code sees a real ClientError.

This module imports only the standard library at import time (botocore when a client is
made): a child process loads it from tests/support/aws_rules_site/sitecustomize.py, by path.
"""

from __future__ import annotations

import functools
import html
import json
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

ENABLE = "ALQUIMISTA_AWS_RULES"
"""Set to 1 in a process's environment: its sitecustomize installs the layer (children).
Set to 0 for the test process: no layer at all (moto as it is, to compare)."""
MARK = "x-alquimista-aws-rules"
"""Header of a refusal the layer answered (AWS's body and status; this header is ours)."""
_CONTEXT_KEY = "alquimista_aws_rules.refusal"

Check = Callable[[Any], "str | None"]
"""Why a value breaks the rule (AWS's wording where known), or None."""


@dataclass(frozen=True)
class Rule:
    """One documented constraint on one member (or, with ``member=""``, on the call)."""

    service: str
    """botocore's service name (rds, secretsmanager, lambda, events, cloudformation)."""
    operations: tuple[str, ...]
    """API operation names; ``("*",)``: every operation whose input has the member."""
    member: str
    """Path into the parameters: ``Name``, ``Tags`` (the list), ``Tags[].Key``,
    ``Environment.Variables``; empty for a rule on the whole call."""
    check: Check
    source: str
    """The document (and shape) the sentence comes from."""
    quote: str
    """AWS's sentence, exactly."""
    code: str
    """The error code AWS answers with."""
    status: int = 400
    refused: tuple[dict[str, Any], ...] = ()
    """Calls (parameters of ``operation``) this rule refuses."""
    accepted: tuple[dict[str, Any], ...] = ()
    """Calls this rule lets through."""
    from_model: bool = False
    """The botocore model holds this constraint: ``model_problems`` enforces it."""
    name: str = ""
    via: str = ""
    """The operation the examples call, when ``operations`` is ``("*",)``."""

    @property
    def operation(self) -> str:
        """The operation ``refused`` and ``accepted`` are parameters of."""
        return self.via or self.operations[0]

    def __str__(self) -> str:
        return self.name or f"{self.service}:{'/'.join(self.operations)}:{self.member}"


@dataclass(frozen=True)
class Refusal:
    """What AWS answers a call it refuses."""

    code: str
    message: str
    status: int = 400
    rule: str = ""


# --- the sentences' own terms ---------------------------------------------------------------

def plain(text: str) -> str:
    """Documentation HTML (the botocore model's) as one line of text."""
    inline = re.sub(r"</?(code|i|b|a|strong|em)(\s[^>]*)?>", "", text)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", inline))).strip()


def model_documentation(service: str, operation: str, member: str) -> str:
    """The botocore model's documentation of ``operation``'s input ``member``, as text."""
    import botocore.session

    shape: Any = botocore.session.get_session().get_service_model(service).operation_model(
        operation).input_shape
    return plain(shape.members[member].documentation)


def shape_documentation(service: str, shape: str, member: str | None = None) -> str:
    """The botocore model's documentation of a shape (or one of its members), as text."""
    import botocore.session

    found: Any = botocore.session.get_session().get_service_model(service).shape_for(shape)
    return plain((found.members[member] if member else found).documentation)


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


ASCII_LETTER = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
ASCII_DIGIT = frozenset("0123456789")


def rds_identifier(parameter: str, longest: int, *, arn: bool = False,
                   automated: bool = False) -> Check:
    """RDS's identifier rule: "Must contain from 1 to N letters, numbers, or hyphens. First
    character must be a letter. Can't end with a hyphen or contain two consecutive hyphens."
    (RDS answers such a value with InvalidParameterValue, in these words.) ``arn``: an ARN is
    accepted too (describe calls); ``automated``: an automated snapshot's ``rds:`` prefix."""
    why = (f"The parameter {parameter} is not a valid identifier. Identifiers must begin with "
           "a letter; must contain only ASCII letters, digits, and hyphens; and must not end "
           f"with a hyphen or contain two consecutive hyphens (1 to {longest} characters).")

    def check(value: Any) -> str | None:
        if not _is_text(value):
            return None
        if arn and re.fullmatch(r"arn:aws[a-z-]*:rds:[a-z0-9-]+:[0-9]{12}:[a-z-]+:\S+", value):
            return None
        if automated and value.startswith("rds:"):
            value = value[4:]
        ok = (1 <= len(value) <= longest and value[0] in ASCII_LETTER
              and set(value) <= ASCII_LETTER | ASCII_DIGIT | {"-"}
              and not value.endswith("-") and "--" not in value)
        return None if ok else why
    return check


def _tag_text_ok(text: str) -> bool:
    """``^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$``: Unicode letters, separators, numbers and
    _ . : / = + - @ (Java's \\p{L}, \\p{Z}, \\p{N}: the general categories L*, Z*, N*)."""
    return all(unicodedata.category(c)[0] in "LZN" or c in "_.:/=+-@" for c in text)


def rds_tag_key(value: Any) -> str | None:
    if not _is_text(value):
        return None
    if not 1 <= len(value) <= 128:
        return f"Tag key must be 1 to 128 Unicode characters, not {len(value)}."
    if value.lower().startswith(("aws:", "rds:")):
        return "Tag keys can't be prefixed with aws: or rds:."
    if not _tag_text_ok(value):
        return ("Tag keys must match pattern ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$.")
    return None


def rds_tag_value(value: Any) -> str | None:
    if not _is_text(value):
        return None
    if len(value) > 256:
        return f"Tag value must be at most 256 Unicode characters, not {len(value)}."
    if value.lower().startswith(("aws:", "rds:")):
        return "Tag values can't be prefixed with aws: or rds:."
    if not _tag_text_ok(value):
        return "Tag values must match pattern ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$."
    return None


def at_most(count: int, what: str) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, list | dict) and len(value) > count:
            return f"{what}: at most {count}, not {len(value)}."
        return None
    return check


def between(low: int, high: int, parameter: str) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            return f"Invalid value {value} for {parameter}. Must be between {low} and {high}"
        return None
    return check


def one_of(values: tuple[str, ...], parameter: str) -> Check:
    def check(value: Any) -> str | None:
        if _is_text(value) and value not in values:
            return (f"Invalid value {value!r} for {parameter}. Valid values: "
                    f"{', '.join(values)}")
        return None
    return check


def not_both(first: str, second: str) -> Check:
    def check(params: Any) -> str | None:
        if isinstance(params, dict) and params.get(first) and params.get(second):
            return f"{first} can't be used in conjunction with {second}."
        return None
    return check


# --- Lambda --------------------------------------------------------------------------------

LAMBDA_NAME = re.compile(r"[a-zA-Z0-9-_]+")
"""CreateFunction's FunctionName, a name alone (the model's pattern, its name group)."""
LAMBDA_NAME_LONGEST = 64
LAMBDA_RESERVED = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})
"""Lambda Developer Guide, "Defined runtime environment variables": Reserved environment
variables (the list under that heading)."""
LAMBDA_ENV_NAME = re.compile(r"[a-zA-Z]([a-zA-Z0-9_])+")
LAMBDA_ENV_BYTES = 4096
SYNC_PAYLOAD = 6 * 1024 * 1024
ASYNC_PAYLOAD = 1024 * 1024
_FUNCTION = re.compile(
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?(?P<name>[a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?")


def lambda_function_name(value: Any) -> str | None:
    """"If you specify only the function name, it is limited to 64 characters in length."
    (the function's name, in whichever of the name formats it comes)."""
    if not _is_text(value):
        return None
    found = _FUNCTION.fullmatch(value)
    if found and len(found["name"]) > LAMBDA_NAME_LONGEST:
        return (f"1 validation error detected: Value '{value}' at 'functionName' failed to "
                f"satisfy constraint: Member must have length less than or equal to "
                f"{LAMBDA_NAME_LONGEST}")
    return None


def lambda_function_name_problem(name: str) -> str | None:
    """A function's name alone (what CreateFunction gets): 1-64 of ``[a-zA-Z0-9-_]``."""
    if not LAMBDA_NAME.fullmatch(name):
        return f"{name!r} is not 1 or more of letters, digits, hyphens and underscores"
    return lambda_function_name(name)


def lambda_payload(params: Any) -> str | None:
    """"The maximum payload size is 6 MB for synchronous invocations and 1 MB for
    asynchronous invocations." (Lambda answers RequestEntityTooLargeException, HTTP 413.)"""
    if not isinstance(params, dict):
        return None
    payload = params.get("Payload")
    size = len(payload.encode()) if isinstance(payload, str) else \
        len(payload) if isinstance(payload, bytes | bytearray) else None
    limit = ASYNC_PAYLOAD if params.get("InvocationType") == "Event" else SYNC_PAYLOAD
    if size is not None and size > limit:
        return f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
    return None


def lambda_environment_problem(variables: Any) -> str | None:
    """What Lambda refuses in a function's Environment.Variables: a name off the model's
    pattern, a reserved name, or more than 4 KB (the variables as JSON, as Lambda measures
    them: "String measured: {...}" in its error)."""
    if not isinstance(variables, dict):
        return None
    bad = sorted(k for k in variables if not (_is_text(k) and LAMBDA_ENV_NAME.fullmatch(k)))
    if bad:
        return (f"1 validation error detected: Value at 'environment.variables' failed to "
                f"satisfy constraint: Map keys must satisfy constraint: [Member must satisfy "
                f"regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+] ({', '.join(bad)})")
    reserved = sorted(k for k in variables if k in LAMBDA_RESERVED)
    if reserved:
        return ("Lambda was unable to configure your environment variables because the "
                "environment variables you have provided contains reserved keys that are "
                "currently not supported for modification. Reserved keys used in this "
                f"request: {', '.join(reserved)}")
    size = len(json.dumps(variables, separators=(",", ":")).encode())
    if size > LAMBDA_ENV_BYTES:
        return ("Lambda was unable to configure your environment variables because the "
                "environment variables you have provided exceeded the 4KB limit. "
                f"String measured: {size} bytes")
    return None


# --- CloudFormation -----------------------------------------------------------------------

STACK_NAME = re.compile(r"[a-zA-Z][-a-zA-Z0-9]*")


def stack_name_problem(value: Any) -> str | None:
    if not _is_text(value):
        return None
    if STACK_NAME.fullmatch(value) and len(value) <= 128:
        return None
    return (f"1 validation error detected: Value '{value}' at 'stackName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            "[a-zA-Z][-a-zA-Z0-9]*|arn:[-a-zA-Z0-9:/._+]* (and at most 128 characters)")


# --- EventBridge: "Schedule expressions for rules" ----------------------------------------

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
RATE_UNITS = ("minute", "hour", "day")
_NUMBER = re.compile(r"[0-9]+")  # ASCII digits: \d would admit any script's


@dataclass(frozen=True)
class CronField:
    """A row of the table "Field | Values | Wildcards"."""

    name: str
    low: int
    high: int
    wildcards: str
    names: tuple[str, ...] = ()


CRON = (
    CronField("Minutes", 0, 59, ",-*/"),
    CronField("Hours", 0, 23, ",-*/"),
    CronField("Day-of-month", 1, 31, ",-*?/LW"),
    CronField("Month", 1, 12, ",-*/", MONTHS),
    CronField("Day-of-week", 1, 7, ",-*?L#", WEEKDAYS),
    CronField("Year", 1970, 2199, ",-*/"),
)
DAY_OF_MONTH, DAY_OF_WEEK = 2, 4


def schedule_problem(expression: Any) -> str | None:
    """Why EventBridge refuses ``expression`` as a rule's ScheduleExpression, or None.

    Where the document is silent this refuses (a deploy should rely only on what AWS
    documents): names in lower case, ranges that run backwards, L/W/# inside a list, steps
    past the field's highest value, several spaces between fields, a rate's leading zeros.
    """
    if not _is_text(expression):
        return None
    if len(expression) > 256:
        return "ScheduleExpression is longer than 256 characters"
    if expression.startswith("rate(") and expression.endswith(")"):
        return _rate_problem(expression[5:-1])
    if expression.startswith("cron(") and expression.endswith(")"):
        return _cron_problem(expression[5:-1])
    return "neither rate(value unit) nor cron(fields)"


def _rate_problem(inner: str) -> str | None:
    value, space, unit = inner.partition(" ")
    if not space or not _NUMBER.fullmatch(value) or value.startswith("0"):
        return "a rate's value is a positive number: rate(value unit)"
    if unit not in (*RATE_UNITS, *(u + "s" for u in RATE_UNITS)):
        return "a rate's unit is minute | minutes | hour | hours | day | days"
    if (int(value) == 1) != (unit in RATE_UNITS):
        return "the unit is singular for a value of 1 and plural for values over 1"
    return None


def _cron_problem(inner: str) -> str | None:
    fields = inner.split(" ")
    if len(fields) != len(CRON) or not all(fields):
        return "cron expressions have six required fields, separated by white space"
    if [fields[DAY_OF_MONTH], fields[DAY_OF_WEEK]].count("?") != 1:
        return "exactly one of Day-of-month and Day-of-week is ? (the other gives the days)"
    for spec, text in zip(CRON, fields, strict=True):
        if not _field_ok(spec, text):
            return f"{spec.name} {text!r} is not one of {spec.low}-{spec.high}" + (
                f" or {spec.names[0]}-{spec.names[-1]}" if spec.names else "") + \
                f" with the wildcards {' '.join(spec.wildcards)}"
    return None


def _value(spec: CronField, text: str) -> int | None:
    number = spec.names.index(text) + spec.low if text in spec.names else \
        int(text) if _NUMBER.fullmatch(text) else None
    return number if number is not None and spec.low <= number <= spec.high else None


def _field_ok(spec: CronField, text: str) -> bool:
    if text == "?":
        return "?" in spec.wildcards
    if "L" in spec.wildcards and spec.name == "Day-of-month":
        if text in ("L", "LW"):
            return True
        if text.endswith("W"):
            return "W" in spec.wildcards and _value(spec, text[:-1]) is not None
    if spec.name == "Day-of-week":
        if text == "L":
            return True
        if text.endswith("L") and len(text) > 1:
            return _value(spec, text[:-1]) is not None
        if "#" in text:
            day, _, nth = text.partition("#")
            return _value(spec, day) is not None and nth in ("1", "2", "3", "4", "5")
    return all(_item_ok(spec, item) for item in text.split(","))


def _item_ok(spec: CronField, item: str) -> bool:
    base, slash, step = item.partition("/")
    if slash:  # steps up to the field's highest value (Quartz's bound; Year: any)
        longest = None if spec.name == "Year" else spec.high
        if "/" not in spec.wildcards or not _NUMBER.fullmatch(step) or int(step) < 1 \
                or (longest is not None and int(step) > longest):
            return False
    if base == "*":
        return True
    first, dash, last = base.partition("-")
    low = _value(spec, first)
    if not dash:
        return low is not None
    high = _value(spec, last)
    return low is not None and high is not None and low <= high


def event_schedule(value: Any) -> str | None:
    why = schedule_problem(value)
    return "Parameter ScheduleExpression is not valid." if why else None


# --- the table ------------------------------------------------------------------------------

CLUSTER = "aws-rules-cluster"
"""The examples' cluster (tests/aws/test_aws_rules.py makes it in moto first)."""
SECRET = "aws-rules/secret"
FUNCTION = "aws-rules-function"
_IDENTIFIER_SOURCE = ("RDS API Reference, CreateDBClusterSnapshot, DBClusterSnapshotIdentifier "
                      "(botocore rds CreateDBClusterSnapshotMessage.DBClusterSnapshotIdentifier)")
_IDENTIFIER_QUOTE = ("Must contain from 1 to 63 letters, numbers, or hyphens. First character "
                     "must be a letter. Can't end with a hyphen or contain two consecutive "
                     "hyphens.")
_CLUSTER_QUOTE = ("Must contain from 1 to 63 (for Aurora DB clusters) or 1 to 52 (for "
                  "Multi-AZ DB clusters) letters, numbers, or hyphens. First character must "
                  "be a letter. Can't end with a hyphen or contain two consecutive hyphens.")
_TAG_KEY_QUOTE = ("A key is the required name of the tag. The string value can be from 1 to "
                  "128 Unicode characters in length and can't be prefixed with aws: or rds:. "
                  "The string can only contain only the set of Unicode letters, digits, "
                  "white-space, '_', '.', ':', '/', '=', '+', '-', '@' (Java regex: "
                  "\"^([\\\\p{L}\\\\p{Z}\\\\p{N}_.:/=+\\\\-@]*)$\").")
_TAG_VALUE_QUOTE = ("A value is the optional value of the tag. The string value can be from 1 "
                    "to 256 Unicode characters in length and can't be prefixed with aws: or "
                    "rds:. The string can only contain only the set of Unicode letters, "
                    "digits, white-space, '_', '.', ':', '/', '=', '+', '-', '@' (Java regex: "
                    "\"^([\\\\p{L}\\\\p{Z}\\\\p{N}_.:/=+\\\\-@]*)$\").")


def _snap(name: str, **more: Any) -> dict[str, Any]:
    return {"DBClusterSnapshotIdentifier": name, "DBClusterIdentifier": CLUSTER, **more}


def _tagged(*tags: tuple[str, str]) -> dict[str, Any]:
    return _snap(f"aws-rules-{uuid.uuid4().hex[:8]}",
                 Tags=[{"Key": k, "Value": v} for k, v in tags])


RULES: tuple[Rule, ...] = (
    Rule("rds", ("CreateDBClusterSnapshot",), "DBClusterSnapshotIdentifier",
         rds_identifier("DBClusterSnapshotIdentifier", 63), _IDENTIFIER_SOURCE,
         _IDENTIFIER_QUOTE, "InvalidParameterValue", name="rds-snapshot-identifier",
         refused=(_snap("a" * 64), _snap("a" * 139), _snap("1snapshot"), _snap("snap--1"),
                  _snap("snapshot-"), _snap("snap_1"), _snap("snäpshot"), _snap("")),
         accepted=(_snap("a" * 63), _snap("my-cluster1-snapshot1"), _snap("A1-b2"))),
    Rule("rds", ("CreateDBCluster",), "DBClusterIdentifier",
         rds_identifier("DBClusterIdentifier", 63),
         "RDS API Reference, CreateDBCluster, DBClusterIdentifier (botocore rds "
         "CreateDBClusterMessage.DBClusterIdentifier)", _CLUSTER_QUOTE,
         "InvalidParameterValue", name="rds-cluster-identifier",
         refused=({"DBClusterIdentifier": "c" * 64, "Engine": "aurora-postgresql"},
                  {"DBClusterIdentifier": "cluster--1", "Engine": "aurora-postgresql"}),
         accepted=({"DBClusterIdentifier": "c" * 63, "Engine": "aurora-postgresql",
                    "MasterUsername": "admin_user", "MasterUserPassword": "not-a-secret-1"},)),
    # The cluster a snapshot is of "Must match the identifier of an existing DBCluster", so
    # it keeps the rule that cluster was created under (CreateDBCluster's, above).
    Rule("rds", ("CreateDBClusterSnapshot",), "DBClusterIdentifier",
         rds_identifier("DBClusterIdentifier", 63),
         "RDS API Reference, CreateDBClusterSnapshot, DBClusterIdentifier: \"Must match the "
         "identifier of an existing DBCluster.\"; CreateDBCluster, DBClusterIdentifier",
         _CLUSTER_QUOTE, "InvalidParameterValue", name="rds-snapshot-cluster-identifier",
         refused=({"DBClusterSnapshotIdentifier": "s1", "DBClusterIdentifier": "-cluster"},
                  {"DBClusterSnapshotIdentifier": "s1", "DBClusterIdentifier": "c" * 64}),
         accepted=(_snap("s-ok-1"),)),
    Rule("rds", ("DeleteDBClusterSnapshot",), "DBClusterSnapshotIdentifier",
         rds_identifier("DBClusterSnapshotIdentifier", 63, automated=True),
         "RDS API Reference, DeleteDBClusterSnapshot, DBClusterSnapshotIdentifier: \"Must be "
         "the name of an existing DB cluster snapshot in the available state.\" (so it has the "
         "form CreateDBClusterSnapshot requires)", _IDENTIFIER_QUOTE, "InvalidParameterValue",
         name="rds-delete-snapshot-identifier",
         refused=({"DBClusterSnapshotIdentifier": "x" * 70},
                  {"DBClusterSnapshotIdentifier": "bad--name"}),
         accepted=({"DBClusterSnapshotIdentifier": "no-such-snapshot"},)),
    Rule("rds", ("DescribeDBClusterSnapshots",), "DBClusterSnapshotIdentifier",
         rds_identifier("DBClusterSnapshotIdentifier", 63, arn=True, automated=True),
         "RDS API Reference, DescribeDBClusterSnapshots, DBClusterSnapshotIdentifier: \"If "
         "supplied, must match the identifier of an existing DBClusterSnapshot.\"",
         _IDENTIFIER_QUOTE, "InvalidParameterValue", name="rds-describe-snapshot-identifier",
         refused=({"DBClusterSnapshotIdentifier": "s" * 64},),
         accepted=({"DBClusterSnapshotIdentifier": "s" * 63},
                   {"DBClusterSnapshotIdentifier": "rds:aws-rules-cluster-2026-01-01-00-00",
                    "SnapshotType": "automated"})),
    Rule("rds", ("DescribeDBClusterSnapshots",), "DBClusterIdentifier",
         rds_identifier("DBClusterIdentifier", 63, arn=True),
         "RDS API Reference, DescribeDBClusterSnapshots, DBClusterIdentifier: \"If supplied, "
         "must match the identifier of an existing DBCluster.\"", _CLUSTER_QUOTE,
         "InvalidParameterValue", name="rds-describe-snapshots-cluster",
         refused=({"DBClusterIdentifier": "cluster-"},),
         accepted=({"DBClusterIdentifier": CLUSTER},)),
    Rule("rds", ("DescribeDBClusterSnapshots",), "", not_both(
        "DBClusterSnapshotIdentifier", "DBClusterIdentifier"),
         "RDS API Reference, DescribeDBClusterSnapshots, DBClusterSnapshotIdentifier",
         "This parameter can't be used in conjunction with the DBClusterIdentifier parameter.",
         "InvalidParameterCombination", name="rds-describe-snapshots-one-selector",
         refused=({"DBClusterSnapshotIdentifier": "s1", "DBClusterIdentifier": CLUSTER},),
         accepted=({"DBClusterSnapshotIdentifier": "s1"},)),
    Rule("rds", ("DescribeDBClusterSnapshots",), "SnapshotType",
         one_of(("automated", "manual", "shared", "public"), "SnapshotType"),
         "RDS API Reference, DescribeDBClusterSnapshots, SnapshotType",
         "The type of DB cluster snapshots to be returned. You can specify one of the "
         "following values: automated - Return all DB cluster snapshots that have been "
         "automatically taken by Amazon RDS for my Amazon Web Services account. manual - "
         "Return all DB cluster snapshots that have been taken by my Amazon Web Services "
         "account. shared - Return all manual DB cluster snapshots that have been shared to my "
         "Amazon Web Services account. public - Return all DB cluster snapshots that have been "
         "marked as public.", "InvalidParameterValue", name="rds-snapshot-type",
         refused=({"SnapshotType": "Manual"}, {"SnapshotType": "all"}),
         accepted=({"SnapshotType": "manual"}, {"SnapshotType": "automated"})),
    Rule("rds", ("DescribeDBClusterSnapshots",), "MaxRecords",
         between(20, 100, "MaxRecords"),
         "RDS API Reference, DescribeDBClusterSnapshots, MaxRecords",
         "Constraints: Minimum 20, maximum 100.", "InvalidParameterValue",
         name="rds-describe-snapshots-max-records",
         refused=({"MaxRecords": 19}, {"MaxRecords": 101}),
         accepted=({"MaxRecords": 20}, {"MaxRecords": 100})),
    Rule("rds", ("DescribeDBClusters",), "MaxRecords", between(20, 100, "MaxRecords"),
         "RDS API Reference, DescribeDBClusters, MaxRecords",
         "Constraints: Minimum 20, maximum 100", "InvalidParameterValue",
         name="rds-describe-clusters-max-records",
         refused=({"MaxRecords": 5},), accepted=({"MaxRecords": 50},)),
    Rule("rds", ("DescribeDBClusters",), "DBClusterIdentifier",
         rds_identifier("DBClusterIdentifier", 63, arn=True),
         "RDS API Reference, DescribeDBClusters, DBClusterIdentifier: \"The user-supplied DB "
         "cluster identifier or the Amazon Resource Name (ARN) of the DB cluster.\"",
         _CLUSTER_QUOTE, "InvalidParameterValue", name="rds-describe-clusters-identifier",
         refused=({"DBClusterIdentifier": "c" * 64},),
         accepted=({"DBClusterIdentifier": CLUSTER},)),
    Rule("rds", ("*",), "Tags[].Key", rds_tag_key,
         "RDS API Reference, Tag (botocore rds Tag.Key)", _TAG_KEY_QUOTE,
         "InvalidParameterValue", name="rds-tag-key",
         via="CreateDBClusterSnapshot",
         refused=(_tagged(("aws:project", "x")), _tagged(("rds:x", "x")),
                  _tagged(("k" * 129, "x")), _tagged(("a,b", "x")), _tagged(("", "x"))),
         accepted=(_tagged(("project", "alquimista-schema")), _tagged(("k" * 128, "x")),
                   _tagged(("ça va / ok=1+2@x", "v")))),
    Rule("rds", ("*",), "Tags[].Value", rds_tag_value,
         "RDS API Reference, Tag (botocore rds Tag.Value; the CloudFormation resource "
         "specification gives Value a Minimum of 0: an empty value is accepted)",
         _TAG_VALUE_QUOTE, "InvalidParameterValue", name="rds-tag-value",
         via="CreateDBClusterSnapshot",
         refused=(_tagged(("k", "v" * 257)), _tagged(("k", "a;b")), _tagged(("k", "aws:x"))),
         accepted=(_tagged(("k", "")), _tagged(("k", "v" * 256)),
                   _tagged(("request-id", "Req-42")))),
    Rule("rds", ("*",), "Tags", at_most(50, "Tags per resource"),
         "Amazon RDS User Guide, Tagging Amazon RDS resources (the tag set of a resource)",
         "A tag set can contain as many as 50 tags, or it can be empty.",
         "TagQuotaPerResourceExceeded", name="rds-tags-per-resource",
         via="CreateDBClusterSnapshot",
         refused=(_tagged(*((f"k{i}", "v") for i in range(51))),),
         accepted=(_tagged(*((f"k{i}", "v") for i in range(50))),)),
    Rule("secretsmanager", ("GetSecretValue",), "SecretId", lambda v: None,
         "Secrets Manager API Reference, GetSecretValue, SecretId (botocore secretsmanager "
         "SecretIdType: min 1, max 2048)",
         "Length Constraints: Minimum length of 1. Maximum length of 2048.",
         "ValidationException", from_model=True, name="secrets-secret-id",
         refused=({"SecretId": "s" * 2049},),
         accepted=({"SecretId": SECRET}, {"SecretId": "s" * 2048})),
    Rule("lambda", ("Invoke",), "FunctionName", lambda_function_name,
         "Lambda API Reference, Invoke, FunctionName (botocore lambda "
         "InvocationRequest.FunctionName)",
         "You can append a version number or alias to any of the formats. The length "
         "constraint applies only to the full ARN. If you specify only the function name, it "
         "is limited to 64 characters in length.", "ValidationException",
         name="lambda-invoke-function-name",
         refused=({"FunctionName": "f" * 65}, {"FunctionName": "my function"},
                  {"FunctionName": "f" * 257}),
         accepted=({"FunctionName": FUNCTION}, {"FunctionName": "f" * 64},
                   {"FunctionName": f"arn:aws:lambda:sa-east-1:123456789012:function:"
                                    f"{FUNCTION}:live"})),
    Rule("lambda", ("Invoke",), "", lambda_payload,
         "Lambda API Reference, Invoke, Payload (botocore lambda InvocationRequest.Payload)",
         "The maximum payload size is 6 MB for synchronous invocations and 1 MB for "
         "asynchronous invocations.", "RequestEntityTooLargeException", status=413,
         name="lambda-invoke-payload",
         refused=({"FunctionName": FUNCTION, "Payload": b"x" * (SYNC_PAYLOAD + 1)},
                  {"FunctionName": FUNCTION, "InvocationType": "Event",
                   "Payload": b"x" * (ASYNC_PAYLOAD + 1)}),
         accepted=({"FunctionName": FUNCTION, "Payload": b"{}"},)),
    Rule("lambda", ("UpdateFunctionConfiguration", "CreateFunction"), "Environment.Variables",
         lambda_environment_problem,
         "Lambda Developer Guide, \"Working with Lambda environment variables\" and \"Defined "
         "runtime environment variables\"; botocore lambda EnvironmentVariableName (pattern "
         "[a-zA-Z]([a-zA-Z0-9_])+)",
         "Keys start with a letter and are at least two characters. Keys only contain "
         "letters, numbers, and the underscore character (_). Keys aren't reserved by Lambda. "
         "The total size of all environment variables doesn't exceed 4 KB. ... The keys for "
         "these environment variables are reserved and cannot be set in your function "
         "configuration.", "InvalidParameterValueException",
         name="lambda-environment",
         refused=({"FunctionName": FUNCTION, "Environment": {"Variables": {"AWS_REGION": "x"}}},
                  {"FunctionName": FUNCTION, "Environment": {"Variables": {"A": "x"}}},
                  {"FunctionName": FUNCTION, "Environment": {"Variables": {"LONG": "x" * 4096}}}),
         accepted=({"FunctionName": FUNCTION, "Environment": {"Variables": {
             "ENVIRONMENT": "dev", "TZ": "UTC"}}},)),
    Rule("events", ("PutRule",), "ScheduleExpression", event_schedule,
         "Amazon EventBridge User Guide, \"Schedule expressions for rules\" (cron expressions; "
         "rate expressions)",
         "Cron expressions have six required fields, which are separated by white space. ... "
         "You can't specify the Day-of-month and Day-of-week fields in the same cron "
         "expression. If you specify a value or a * (asterisk) in one of the fields, you must "
         "use a ? (question mark) in the other. ... rate(value unit) value: A positive number. "
         "unit: The unit of time. ... Valid values: minute | minutes | hour | hours | day | "
         "days. If the value is equal to 1, then the unit must be singular. If the value is "
         "greater than 1, the unit must be plural.", "ValidationException",
         name="events-schedule",
         refused=({"Name": "aws-rules", "ScheduleExpression": "rate(1 hours)"},
                  {"Name": "aws-rules", "ScheduleExpression": "rate(5 hour)"},
                  {"Name": "aws-rules", "ScheduleExpression": "rate(0 minutes)"},
                  {"Name": "aws-rules", "ScheduleExpression": "cron(0 3 * * * *)"},
                  {"Name": "aws-rules", "ScheduleExpression": "cron(0 3 * * ?)"},
                  {"Name": "aws-rules", "ScheduleExpression": "cron(60 3 * * ? *)"}),
         accepted=({"Name": "aws-rules", "ScheduleExpression": "rate(1 day)"},
                   {"Name": "aws-rules", "ScheduleExpression": "cron(0 3 * * ? *)"},
                   {"Name": "aws-rules", "ScheduleExpression": "cron(15 10 ? * 6L 2022-2023)"},
                   {"Name": "aws-rules", "ScheduleExpression": "cron(0/15 * * * ? *)"})),
    Rule("cloudformation", ("CreateStack",), "StackName", stack_name_problem,
         "CloudFormation API Reference, CreateStack, StackName (botocore cloudformation "
         "CreateStackInput.StackName)",
         "A stack name can contain only alphanumeric characters (case sensitive) and hyphens. "
         "It must start with an alphabetical character and can't be longer than 128 "
         "characters.", "ValidationError", name="cloudformation-stack-name",
         refused=({"StackName": "1stack", "TemplateBody": "{}"},
                  {"StackName": "s" * 129, "TemplateBody": "{}"},
                  {"StackName": "my_stack", "TemplateBody": "{}"}),
         accepted=({"StackName": "AlquimistaSchemaRunner-dev", "TemplateBody": json.dumps(
             {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})},)),
)
BY_NAME = {str(rule): rule for rule in RULES}


@functools.cache
def _rules_for(service: str, operation: str) -> tuple[Rule, ...]:
    """Dispatch by table: the rules that apply to ``service``'s ``operation``."""
    return tuple(r for r in RULES if r.service == service and not r.from_model
                 and ("*" in r.operations or operation in r.operations))


def _values_at(value: Any, path: str) -> Iterator[Any]:
    """The values at ``path`` (``a.b``, ``a[].b``) in ``value``; nothing where absent."""
    if not path:
        yield value
        return
    head, _, rest = path.partition(".")
    many = head.endswith("[]")
    head = head.removesuffix("[]")
    if not isinstance(value, dict) or head not in value:
        return
    found = value[head]
    for item in (found if many and isinstance(found, list) else [] if many else [found]):
        yield from _values_at(item, rest)


# --- the botocore model, generically ------------------------------------------------------

@functools.cache
def _compiled(pattern: str) -> Any:
    try:
        import regex  # type: ignore[import-untyped]  # Java-style \p{L} classes, as the model's patterns may use
        return regex.compile(pattern)
    except ImportError:  # pragma: no cover - the venv has regex
        return re.compile(pattern)
    except Exception:  # pragma: no cover
        return None


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


Fail = Callable[[str], list[str]]


def model_problems(shape: Any, value: Any, path: str = "") -> list[str]:
    """The model's min/max/pattern/enum constraints ``value`` breaks, in the words of AWS's
    validation errors ("Value '...' at 'secretId' failed to satisfy constraint: ...").
    Values of the wrong type are botocore's ParamValidator's to report, not these."""
    sensitive = bool(shape.metadata.get("sensitive"))

    def fail(constraint: str) -> list[str]:
        shown = "" if sensitive else f" '{str(value)[:100]}'"
        return [f"Value{shown} at '{path}' failed to satisfy constraint: Member must "
                f"{constraint}"]

    kind, judge_ = _BY_KIND.get(shape.type_name, (object, None))
    if judge_ is None or not isinstance(value, kind) or isinstance(value, bool):
        return []
    return judge_(shape, value, path, fail)


def _structure(shape: Any, value: dict[str, Any], path: str, fail: Fail) -> list[str]:
    return [problem for name, member in shape.members.items() if name in value
            for problem in model_problems(member, value[name],
                                          f"{path}.{_camel(name)}" if path else _camel(name))]


def _list(shape: Any, value: list[Any], path: str, fail: Fail) -> list[str]:
    return _length(shape.metadata, len(value), fail) + [
        problem for i, item in enumerate(value)
        for problem in model_problems(shape.member, item, f"{path}.{i + 1}.member")]


def _map(shape: Any, value: dict[Any, Any], path: str, fail: Fail) -> list[str]:
    return _length(shape.metadata, len(value), fail) + [
        problem for key, item in value.items()
        for problem in (model_problems(shape.key, key, f"{path}.key")
                        + model_problems(shape.value, item, f"{path}.{key}"))]


def _string(shape: Any, value: str, path: str, fail: Fail) -> list[str]:
    problems = _length(shape.metadata, len(value), fail)
    enum = getattr(shape, "enum", None)
    if enum and value not in enum:
        problems += fail(f"satisfy enum value set: [{', '.join(enum)}]")
    pattern = shape.metadata.get("pattern")
    compiled = _compiled(pattern) if pattern else None
    if compiled is not None and not compiled.fullmatch(value):
        problems += fail(f"satisfy regular expression pattern: {pattern}")
    return problems


def _blob(shape: Any, value: bytes | bytearray | str, path: str, fail: Fail) -> list[str]:
    return _length(shape.metadata, len(value.encode() if isinstance(value, str) else value),
                   fail)


def _number(shape: Any, value: int, path: str, fail: Fail) -> list[str]:
    meta = shape.metadata
    if "min" in meta and value < meta["min"]:
        return fail(f"have value greater than or equal to {meta['min']}")
    if "max" in meta and value > meta["max"]:
        return fail(f"have value less than or equal to {meta['max']}")
    return []


_BY_KIND: dict[str, tuple[Any, Callable[..., list[str]]]] = {
    "structure": (dict, _structure), "list": ((list, tuple), _list), "map": (dict, _map),
    "string": (str, _string), "blob": ((bytes, bytearray, str), _blob),
    "integer": (int, _number), "long": (int, _number),
}
"""Each shape type's constraints (the model's ``min``/``max``/``pattern``/``enum``)."""


def _length(meta: Mapping[str, Any], size: int, fail: Fail) -> list[str]:
    if "min" in meta and size < meta["min"]:
        return fail(f"have length greater than or equal to {meta['min']}")
    if "max" in meta and size > meta["max"]:
        return fail(f"have length less than or equal to {meta['max']}")
    return []


_MODEL_CODE = {"query": "ValidationError", "ec2": "InvalidParameterValue"}
"""Which code a service answers a model constraint with (JSON protocols: ValidationException)."""


def refusal(service: str, operation: str, params: Mapping[str, Any],
            operation_model: Any = None) -> Refusal | None:
    """What AWS answers ``service``'s ``operation`` called with ``params``, if it refuses it.

    The model's constraints first (AWS checks them before the service sees the call), then
    the documented rules, by table. Calls botocore itself would refuse (wrong types, missing
    required members, under ``min``) are left to botocore's ParamValidationError.
    """
    if operation_model is None:
        import botocore.session

        operation_model = botocore.session.get_session().get_service_model(
            service).operation_model(operation)
    from botocore.validate import ParamValidator

    shape = operation_model.input_shape
    if shape is None:
        return None
    if ParamValidator().validate(dict(params), shape).has_errors():
        return None
    problems = model_problems(shape, dict(params))
    if problems:
        protocol = operation_model.metadata.get("protocol", "json")
        count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected"
        return Refusal(_MODEL_CODE.get(protocol, "ValidationException"),
                       f"{count}: {'; '.join(problems)}", 400, "botocore model")
    for rule in _rules_for(service, operation):
        for value in _values_at(dict(params), rule.member):
            why = rule.check(value)
            if why:
                return Refusal(rule.code, why, rule.status, str(rule))
    return None


# --- the answer, as AWS sends it --------------------------------------------------------------

def error_body(protocol: str, refused: Refusal, request_id: str) -> tuple[dict[str, str], bytes]:
    """Headers and body of AWS's error answer in ``protocol``."""
    if protocol in ("query", "ec2"):
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{html.escape(refused.code)}"
                f"</Code><Message>{html.escape(refused.message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>")
        return {"content-type": "text/xml", "x-amzn-requestid": request_id}, body.encode()
    if protocol == "json":
        return ({"content-type": "application/x-amz-json-1.1", "x-amzn-requestid": request_id},
                json.dumps({"__type": refused.code, "message": refused.message}).encode())
    return ({"content-type": "application/json", "x-amzn-requestid": request_id,
             "x-amzn-errortype": f"{refused.code}:"},
            json.dumps({"Type": "User", "message": refused.message}).encode())


def answer(operation_model: Any, refused: Refusal) -> tuple[Any, dict[str, Any]]:
    """``(http, parsed)`` for botocore's before-call: AWS's error, parsed by botocore."""
    from botocore.awsrequest import AWSResponse
    from botocore.parsers import create_parser

    protocol = operation_model.metadata.get("protocol", "json")
    request_id = str(uuid.uuid4())
    headers, body = error_body(protocol, refused, request_id)
    headers[MARK] = refused.rule or "refused"

    class Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield body

    sent: Any = headers  # botocore takes any mapping as the headers
    http = AWSResponse("https://aws-rules.invalid/", refused.status, sent, Raw())
    try:
        parsed = create_parser(protocol).parse(
            {"status_code": refused.status, "headers": headers, "body": body},
            operation_model.output_shape)
    except Exception:  # a protocol without a parser here: the shape botocore gives errors
        parsed = {"Error": {"Code": refused.code, "Message": refused.message},
                  "ResponseMetadata": {"RequestId": request_id,
                                       "HTTPStatusCode": refused.status,
                                       "HTTPHeaders": headers}}
    return http, parsed


# --- the layer ------------------------------------------------------------------------------

REFUSED: list[tuple[str, str, Refusal]] = []
"""(service, operation, refusal) of every call the layer refused in this process."""


def _judge(params: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
    """before-parameter-build: judge the parameters as the caller gave them."""
    service = model.service_model.service_name
    refused = refusal(service, model.name, params or {}, model)
    if refused is not None:
        context[_CONTEXT_KEY] = refused


def _answer(model: Any, context: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
    """before-call: a refused call goes nowhere; AWS's answer comes back instead."""
    refused = context.pop(_CONTEXT_KEY, None)
    if refused is None:
        return None
    REFUSED.append((model.service_model.service_name, model.name, refused))
    return answer(model, refused)


def guard(client: Any) -> Any:
    """Put one client behind the layer (idempotent)."""
    events = client.meta.events
    events.register_last("before-parameter-build", _judge,
                         unique_id="alquimista-aws-rules-judge")
    events.register_first("before-call", _answer, unique_id="alquimista-aws-rules-answer")
    return client


def install() -> None:
    """Every botocore client made from now on in this process is behind the layer (boto3's
    clients too: boto3.Session.client calls botocore.session.Session.create_client)."""
    import os

    from botocore import session

    if os.environ.get(ENABLE) == "0":  # ALQUIMISTA_AWS_RULES=0: moto as it is (to compare)
        return
    if getattr(session.Session.create_client, "_alquimista_aws_rules", False):
        return
    original = session.Session.create_client

    @functools.wraps(original)
    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        return guard(original(self, *args, **kwargs))

    create_client._alquimista_aws_rules = True  # type: ignore[attr-defined]
    create_client._alquimista_original = original  # type: ignore[attr-defined]
    session.Session.create_client = create_client  # type: ignore[method-assign]


def installed() -> bool:
    from botocore import session

    return bool(getattr(session.Session.create_client, "_alquimista_aws_rules", False))


def judge(rule: Rule, value: Any) -> str | None:
    """``rule``'s verdict on a value at its member (None: accepted)."""
    return rule.check(value)
