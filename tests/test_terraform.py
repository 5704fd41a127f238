"""The Terraform module in deploy/terraform rules out, by construction, each way the old
runner's deployment failed (see /work/shared/CONTEXT.md: Docker bundling, AWS_REGION in the
environment, PRIVATE_WITH_EGRESS subnets, a security-group rule cycle added by hand, tags twice
with different case, Secrets Manager and the cluster unreachable).

Every .tf file is parsed with python-hcl2. Where a ``terraform`` binary is on PATH, ``fmt`` is
checked and the variable validations and the environment merge are evaluated by Terraform
itself (``plan``/``console`` on the variables alone need no provider). ``terraform validate``
is not run: it needs the AWS provider from the registry.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "deploy" / "terraform"
EXAMPLE = MODULE / "examples" / "basic"

TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(
    TERRAFORM is None, reason="no terraform binary on PATH: fmt and evaluation checks skipped")

# Names Lambda sets itself (or that change the runtime); none may come from the deployer.
RESERVED_NAMES = [
    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API", "AWS_XRAY_CONTEXT_MISSING", "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR", "_HANDLER", "_X_AMZN_TRACE_ID", "LANG", "TZ", "PATH",
    "LD_LIBRARY_PATH", "PYTHONPATH", "aws_region",
]
# What the runner reads (README, "Configuration"); all must be accepted.
RUNNER_SETTINGS = {
    "DB_HOST": "writer.cluster-x.us-east-1.rds.amazonaws.com", "DB_PORT": "5432",
    "DB_NAME": "alquimista", "DB_SSLROOTCERT": "/var/task/global-bundle.pem",
    "LOCK_WAIT_SECONDS": "30", "CONNECT_TIMEOUT_SECONDS": "10",
    "CONNECT_BUDGET_SECONDS": "45", "DEADLINE_MARGIN_SECONDS": "10",
}
VPC_ACCESS_POLICY = ("arn:${data.aws_partition.current.partition}:iam::aws:policy/"
                     "service-role/AWSLambdaVPCAccessExecutionRole")


# --- parsing -----------------------------------------------------------------------------


def _unquote(text: str) -> str:
    """python-hcl2 8 keeps the quotes of string literals and labels; older ones do not."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1]
    return text


def _normalize(value: Any) -> Any:
    """Labels and strings without quotes; no ``__is_block__``/``__comments__`` markers."""
    if isinstance(value, dict):
        return {_unquote(key): _normalize(item) for key, item in value.items()
                if not key.startswith("__")}
    if isinstance(value, list):
        return [_normalize(item) for item in value]
    if isinstance(value, str):
        return _unquote(value)
    return value


@cache
def parse(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        parsed: dict[str, Any] = _normalize(hcl2.load(handle))
    return parsed


def module_files() -> list[Path]:
    return sorted(MODULE.glob("*.tf"))


@dataclass(frozen=True)
class Block:
    kind: str              # resource, data, variable, output, check, ...
    labels: tuple[str, ...]
    body: dict[str, Any]
    file: str


def _blocks(files: list[Path]) -> Iterator[Block]:
    for path in files:
        for kind, entries in parse(path).items():
            for entry in entries:
                if kind in ("resource", "data"):
                    for type_, named in entry.items():
                        for name, body in named.items():
                            yield Block(kind, (type_, name), body, path.name)
                elif kind in ("terraform", "locals"):
                    yield Block(kind, (), entry, path.name)
                else:
                    for name, body in entry.items():
                        yield Block(kind, (name,), body, path.name)


def blocks(kind: str, files: list[Path] | None = None) -> list[Block]:
    return [b for b in _blocks(module_files() if files is None else files) if b.kind == kind]


def resources(type_: str) -> dict[str, dict[str, Any]]:
    return {b.labels[1]: b.body for b in blocks("resource") if b.labels[0] == type_}


def one_resource(type_: str, name: str) -> dict[str, Any]:
    found = resources(type_)
    assert name in found, f"no {type_}.{name} in the module (have: {sorted(found)})"
    return found[name]


def variables() -> dict[str, dict[str, Any]]:
    return {b.labels[0]: b.body for b in blocks("variable")}


def module_locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in blocks("locals"):
        merged.update(block.body)
    return merged


def strings(value: Any) -> Iterator[str]:
    """Every string in a parsed value (comments are not in it)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def keys_anywhere(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from keys_anywhere(item)
    elif isinstance(value, list):
        for item in value:
            yield from keys_anywhere(item)


def expr(text: str) -> str:
    """``${var.x}`` -> ``var.x``; a template such as ``a-${var.x}`` is returned as it is."""
    match = re.fullmatch(r"\$\{(.*)\}", text, re.DOTALL)
    return match.group(1) if match and "${" not in match.group(1) else text


def single(body: dict[str, Any], block_name: str) -> dict[str, Any]:
    nested = body.get(block_name)
    assert isinstance(nested, list), f"no {block_name} block"
    assert len(nested) == 1, f"expected one {block_name} block, not {len(nested)}"
    found: dict[str, Any] = nested[0]
    return found


def function() -> dict[str, Any]:
    return one_resource("aws_lambda_function", "this")


def policy_statements() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(static statements, dynamic statement blocks) of the role's inline policy document."""
    policy = one_resource("aws_iam_role_policy", "this")
    match = re.fullmatch(r"data\.aws_iam_policy_document\.(\w+)\.json", expr(policy["policy"]))
    assert match, f"the inline policy is not a policy document: {policy['policy']}"
    documents = {b.labels[1]: b.body for b in blocks("data")
                 if b.labels[0] == "aws_iam_policy_document"}
    document = documents[match.group(1)]
    dynamic = [named["statement"] for named in document.get("dynamic", [])
               if "statement" in named]
    return document.get("statement", []), dynamic


# --- evaluation by Terraform itself ------------------------------------------------------

BASE_VARS: dict[str, Any] = {
    "environment": "dev",
    "vpc_id": "vpc-0123456789abcdef0",
    "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    "cluster_security_group_id": "sg-0123456789abcdef0",
    "db_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:aurora-AbCdEf",
    "bundle_path": "dist/runner.zip",
}


def terraform_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TF_VAR_", "TF_CLI_ARGS", "TF_WORKSPACE"))}
    env.update(CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1", TF_INPUT="0",
               TF_DATA_DIR=str(tmp / ".terraform-data"))
    return env


def terraform(args: list[str], cwd: Path, tmp: Path,
              stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM is not None
    return subprocess.run([TERRAFORM, *args], cwd=cwd, env=terraform_env(tmp), input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)


def variables_only(tmp: Path, extra: str = "") -> Path:
    """A root module of the module's variables.tf alone (plus ``extra``): no provider."""
    root = tmp / "root"
    root.mkdir(parents=True)
    shutil.copy(MODULE / "variables.tf", root / "variables.tf")
    (root / "harness.tf").write_text(extra, encoding="utf-8")
    return root


def plan_variables(tmp: Path, **overrides: Any) -> subprocess.CompletedProcess[str]:
    root = variables_only(tmp)
    (tmp / "vars.tfvars.json").write_text(json.dumps({**BASE_VARS, **overrides}),
                                          encoding="utf-8")
    return terraform(["plan", "-input=false", "-lock=false", "-refresh=false", "-no-color",
                      f"-var-file={tmp / 'vars.tfvars.json'}"], root, tmp)


def console(tmp: Path, expression: str, extra: str = "", **overrides: Any) -> Any:
    """Evaluate ``jsonencode(expression)`` over the module's variables; return it decoded."""
    root = variables_only(tmp, extra)
    (tmp / "vars.tfvars.json").write_text(json.dumps({**BASE_VARS, **overrides}),
                                          encoding="utf-8")
    done = terraform(["console", f"-var-file={tmp / 'vars.tfvars.json'}"], root, tmp,
                     stdin=f"jsonencode({expression})\n")
    assert done.returncode == 0, done.stderr
    return json.loads(json.loads(done.stdout.strip()))


def hcl_object(mapping: dict[str, Any]) -> str:
    """A parsed object of expressions back into HCL: ``{ K = var.x, ... }``."""
    return "{ " + ", ".join(f"{key} = {expr(value)}" for key, value in mapping.items()) + " }"


# --- the extra_environment validations, read the way Terraform reads them ----------------

_FOR_ALL_KEYS = re.compile(
    r"alltrue\(\[for (\w+) in keys\(var\.extra_environment\) : (.*)\]\)", re.DOTALL)


def _key_rule_holds(rule: str, variable: str, key: str) -> bool:
    """Evaluate the few shapes of per-key rule the validations use; fail on any other."""
    subject = rf"(?:upper\({variable}\)|{variable})"
    negated = rule.startswith("!")
    body = rule[1:] if negated else rule
    if match := re.fullmatch(rf'can\(regex\("(.*)", ({subject})\)\)', body):
        value = key.upper() if match.group(2).startswith("upper") else key
        result = re.search(match.group(1).replace("\\\\", "\\"), value) is not None
    elif match := re.fullmatch(rf"contains\(\[(.*)\], ({subject})\)", body):
        value = key.upper() if match.group(2).startswith("upper") else key
        result = value in re.findall(r'"([^"]*)"', match.group(1))
    else:
        pytest.fail(f"extra_environment rule of an unknown shape: {rule!r}; "
                    "teach _key_rule_holds to read it")
    return not result if negated else result


def extra_environment_accepts(key: str) -> bool:
    validations = variables()["extra_environment"]["validation"]
    for validation in validations:
        match = _FOR_ALL_KEYS.fullmatch(expr(validation["condition"]))
        assert match, f"unexpected validation shape: {validation['condition']}"
        if not _key_rule_holds(match.group(2).strip(), match.group(1), key):
            return False
    return True


# =========================================================================================
# Failure class 1: bundling that needed Docker.


def test_the_function_deploys_a_prebuilt_zip_and_builds_nothing() -> None:
    fn = function()
    assert expr(fn["filename"]) == "var.bundle_path"
    assert expr(fn["source_code_hash"]) == "filebase64sha256(var.bundle_path)"
    assert "image_uri" not in fn
    assert fn.get("package_type", "Zip") == "Zip"
    built = [b.labels for b in blocks("resource") + blocks("data")
             if b.labels[0] in {"null_resource", "terraform_data", "archive_file",
                                "docker_image", "docker_registry_image", "external"}]
    assert built == []
    assert not [b.labels for b in blocks("resource") if "provisioner" in b.body]
    text = " ".join(s for path in module_files() for s in strings(parse(path))).lower()
    assert "docker" not in text
    assert "local-exec" not in text


# Failure class 2: AWS_REGION set by the deployer (a reserved name).


def test_the_function_environment_is_the_module_settings_and_extra_environment() -> None:
    variables_block = single(function(), "environment")["variables"]
    assert expr(variables_block) == "merge(var.extra_environment, local.module_environment)", (
        "the module's own settings must be merged last, so they always win")
    own = module_locals()["module_environment"]
    assert own == {"DB_SECRET_ARN": "${var.db_secret_arn}",
                   "ENVIRONMENT": "${var.environment}"}
    for name in own:
        assert not re.match(r"(AWS_|LAMBDA_|_)", name.upper())


def test_the_extra_environment_validation_refuses_reserved_names() -> None:
    extra = variables()["extra_environment"]
    assert expr(extra["type"]) == "map(string)"
    assert extra["default"] == {}
    conditions = " ".join(v["condition"] for v in extra["validation"])
    for marker in ("AWS_", "LAMBDA_", "^(AWS_|LAMBDA_|_)"):
        assert marker in conditions
    for name in [*RESERVED_NAMES, "DB_SECRET_ARN", "ENVIRONMENT", "1DB", "DB-HOST", ""]:
        assert not extra_environment_accepts(name), f"{name!r} is accepted"
    for name in RUNNER_SETTINGS:
        assert extra_environment_accepts(name), f"{name!r} is refused"


@needs_terraform
@pytest.mark.parametrize("name", [*RESERVED_NAMES, "DB_SECRET_ARN", "ENVIRONMENT", "DB-HOST"])
def test_terraform_refuses_a_reserved_name_at_plan_time(name: str, tmp_path: Path) -> None:
    done = plan_variables(tmp_path, extra_environment={"DB_HOST": "h", name: "x"})
    assert done.returncode != 0
    assert "Invalid value for variable" in done.stderr
    assert "extra_environment" in done.stderr


@needs_terraform
def test_terraform_merges_the_runner_settings_with_the_module_ones(tmp_path: Path) -> None:
    done = plan_variables(tmp_path / "plan", extra_environment=RUNNER_SETTINGS)
    assert done.returncode == 0, done.stderr
    own = hcl_object(module_locals()["module_environment"])
    merged = console(tmp_path / "console", expr(single(function(), "environment")["variables"]),
                     extra=f"locals {{\n  module_environment = {own}\n}}\n",
                     extra_environment=RUNNER_SETTINGS, environment="prod")
    assert merged == {**RUNNER_SETTINGS, "DB_SECRET_ARN": BASE_VARS["db_secret_arn"],
                      "ENVIRONMENT": "prod"}


# Failure class 3: PRIVATE_WITH_EGRESS subnets asked for in a VPC with isolated ones only.


def test_subnets_are_used_as_given_and_never_looked_up() -> None:
    lookups = [b.labels for b in blocks("data") if "subnet" in b.labels[0]]
    assert lookups == []
    for path in module_files():
        for text in strings(parse(path)):
            assert not re.search(r"with[_-]?egress", text, re.IGNORECASE), (path.name, text)
    assert expr(single(function(), "vpc_config")["subnet_ids"]) == "var.subnet_ids"
    endpoint = one_resource("aws_vpc_endpoint", "secretsmanager")
    assert expr(endpoint["subnet_ids"]) == "var.subnet_ids"
    subnet_ids = variables()["subnet_ids"]
    assert "default" not in subnet_ids
    assert any("length(var.subnet_ids) > 0" in v["condition"] for v in subnet_ids["validation"])


@needs_terraform
def test_terraform_refuses_an_empty_subnet_list(tmp_path: Path) -> None:
    done = plan_variables(tmp_path, subnet_ids=[])
    assert done.returncode != 0
    assert "subnet_ids must name at least one subnet" in " ".join(done.stderr.split())


# Failure class 4: the function <-> cluster rule made a cycle between stacks, added by hand.


def test_the_cluster_admits_the_function_from_this_module() -> None:
    rules = [r for r in resources("aws_vpc_security_group_ingress_rule").values()
             if expr(r["security_group_id"]) == "var.cluster_security_group_id"]
    assert len(rules) == 1
    rule = rules[0]
    assert expr(rule["referenced_security_group_id"]) == "aws_security_group.function.id"
    assert rule["ip_protocol"] == "tcp"
    assert expr(rule["from_port"]) == expr(rule["to_port"]) == "var.database_port"
    assert variables()["database_port"]["default"] == 5432
    # The function's group lets it out to exactly that port of the cluster's group.
    egress = resources("aws_vpc_security_group_egress_rule")
    to_cluster = [r for r in egress.values()
                  if expr(r.get("referenced_security_group_id", "")) ==
                  "var.cluster_security_group_id"]
    assert len(to_cluster) == 1
    assert expr(to_cluster[0]["security_group_id"]) == "aws_security_group.function.id"
    assert expr(to_cluster[0]["from_port"]) == "var.database_port"
    # Separate rule resources only: inline rules, or the legacy aws_security_group_rule,
    # would fight them.
    for group in resources("aws_security_group").values():
        assert "ingress" not in group
        assert "egress" not in group
    assert resources("aws_security_group_rule") == {}


def test_the_function_reaches_only_the_cluster_and_https_inside_the_vpc() -> None:
    egress = resources("aws_vpc_security_group_egress_rule")
    assert {expr(r["security_group_id"]) for r in egress.values()} == {
        "aws_security_group.function.id"}
    https = [r for r in egress.values() if "cidr_ipv4" in r]
    assert len(https) == 1
    assert (https[0]["from_port"], https[0]["to_port"], https[0]["ip_protocol"]) == (
        443, 443, "tcp")
    assert expr(https[0]["cidr_ipv4"]) == "each.value"
    assert "data.aws_vpc.this.cidr_block_associations" in https[0]["for_each"]
    for rule in egress.values():
        assert "cidr_ipv6" not in rule
        assert rule.get("ip_protocol") != "-1"
        assert "0.0.0.0/0" not in list(strings(rule))


# Failure class 5: tags twice with different case (project and Project); IAM refused the role.


def test_no_resource_in_the_module_sets_tags() -> None:
    for block in blocks("resource"):
        found = {k for k in keys_anywhere(block.body) if k in ("tags", "tags_all")}
        assert not found, f"{block.labels} sets {found}: tags come only from default_tags"
    # A module with its own provider block could not take the caller's default_tags.
    assert blocks("provider") == []


def test_the_example_tags_through_default_tags_once_in_pascal_case() -> None:
    example = [EXAMPLE / "main.tf"]
    providers = [b for b in blocks("provider", example) if b.labels == ("aws",)]
    assert len(providers) == 1
    default_tags = single(providers[0].body, "default_tags")["tags"]
    assert isinstance(default_tags, dict)
    keys = list(default_tags)
    assert len({k.lower() for k in keys}) == len(keys), f"keys differing only in case: {keys}"
    for key in keys:
        assert re.fullmatch(r"[A-Z][a-z0-9]*(?:[A-Z][a-z0-9]*)*", key), f"not PascalCase: {key}"
    assert {"Project", "Environment", "ManagedBy"} <= set(keys)
    assert default_tags["ManagedBy"] == "terraform"
    for block in blocks("resource", example) + blocks("module", example):
        assert "tags" not in block.body


def test_the_example_calls_the_module_with_what_it_declares() -> None:
    calls = blocks("module", [EXAMPLE / "main.tf"])
    assert len(calls) == 1
    call = calls[0].body
    assert (EXAMPLE / call["source"]).resolve() == MODULE.resolve()
    declared = variables()
    given = set(call) - {"source", "providers", "depends_on", "count", "for_each"}
    assert given <= set(declared), f"undeclared: {given - set(declared)}"
    required = {name for name, body in declared.items() if "default" not in body}
    assert required <= given, f"missing: {required - given}"
    assert set(call["extra_environment"]) <= set(RUNNER_SETTINGS)


# Failure classes 6 and 7 (migrations path, driver) belong to the bundle; the module's part
# is to run the bundle's handler on the runtime and architecture it was built for.


def test_the_function_runs_the_bundle_handler_once_at_a_time() -> None:
    fn = function()
    assert fn["handler"] == "lambda_entry.handler.handler"
    assert re.search(r"^def handler\(", (ROOT / "lambda_entry" / "handler.py").read_text(
        encoding="utf-8"), re.MULTILINE)
    assert fn["runtime"] == "python3.12"
    assert fn["reserved_concurrent_executions"] == 1
    assert expr(fn["architectures"][0]) == "var.architecture"
    assert len(fn["architectures"]) == 1
    assert expr(fn["timeout"]) == "var.timeout"
    assert expr(fn["memory_size"]) == "var.memory_size"
    declared = variables()
    assert declared["timeout"]["default"] == 300
    assert declared["memory_size"]["default"] == 512
    assert declared["architecture"]["default"] == "x86_64"
    conditions = " ".join(v["condition"] for v in declared["architecture"]["validation"])
    assert '"x86_64"' in conditions
    assert '"arm64"' in conditions
    invoke_config = one_resource("aws_lambda_function_event_invoke_config", "this")
    assert invoke_config["maximum_retry_attempts"] == 0


@needs_terraform
@pytest.mark.parametrize(("variable", "value"), [
    ("architecture", "amd64"),
    ("architecture", "aarch64"),
    ("db_secret_arn", "aurora-secret"),
    ("bundle_path", "dist/runner"),
    ("timeout", 1000),
    ("log_retention_days", 31),
    ("name", "has spaces"),
])
def test_terraform_refuses_a_bad_value(variable: str, value: Any, tmp_path: Path) -> None:
    done = plan_variables(tmp_path, **{variable: value})
    assert done.returncode != 0
    assert f"var.{variable}" in done.stderr


@needs_terraform
def test_terraform_accepts_the_defaults(tmp_path: Path) -> None:
    done = plan_variables(tmp_path, architecture="arm64",
                          secret_kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/abc")
    assert done.returncode == 0, done.stderr


def test_the_log_group_exists_before_the_function() -> None:
    group = one_resource("aws_cloudwatch_log_group", "this")
    assert group["name"] == "/aws/lambda/${var.name}"
    assert function()["function_name"] == "${var.name}"
    assert expr(group["retention_in_days"]) == "var.log_retention_days"
    assert variables()["log_retention_days"]["default"] == 30
    depends_on = [expr(d) for d in function()["depends_on"]]
    assert "aws_cloudwatch_log_group.this" in depends_on
    # Lambda checks the role's network-interface permissions when it creates the function.
    assert "aws_iam_role_policy_attachment.vpc_access" in depends_on
    assert "aws_iam_role_policy.this" in depends_on


# The role: least privilege.


def test_the_role_reads_exactly_one_secret_and_writes_its_own_logs() -> None:
    static, dynamic = policy_statements()
    by_action = {tuple(s["actions"]): s for s in static}
    assert set(by_action) == {("secretsmanager:GetSecretValue",),
                              ("logs:CreateLogStream", "logs:PutLogEvents")}
    secret = by_action[("secretsmanager:GetSecretValue",)]
    assert [expr(r) for r in secret["resources"]] == ["var.db_secret_arn"]
    logs = by_action[("logs:CreateLogStream", "logs:PutLogEvents")]
    assert {expr(r) for r in logs["resources"]} == {
        "aws_cloudwatch_log_group.this.arn", "${aws_cloudwatch_log_group.this.arn}:*"}
    for statement in static + [d["content"][0] for d in dynamic]:
        assert statement.get("effect", "Allow") == "Allow"
        assert "not_actions" not in statement
        assert "not_resources" not in statement
        assert all("*" not in action for action in statement["actions"])
        assert "*" not in statement["resources"]
    assert len(resources("aws_iam_role_policy")) == 1
    assert resources("aws_iam_policy") == {}
    assert resources("aws_iam_role_policy_attachment").keys() == {"vpc_access"}


def test_kms_decrypt_only_when_a_key_is_given_and_only_via_secrets_manager() -> None:
    _, dynamic = policy_statements()
    assert len(dynamic) == 1
    statement = dynamic[0]
    assert expr(statement["for_each"]) == (
        "var.secret_kms_key_arn == null ? [] : [var.secret_kms_key_arn]")
    content = statement["content"][0]
    assert content["actions"] == ["kms:Decrypt"]
    assert [expr(r) for r in content["resources"]] == ["statement.value"]
    condition = single(content, "condition")
    assert condition["variable"] == "kms:ViaService"
    assert condition["test"] == "StringEquals"
    assert condition["values"] == [
        "secretsmanager.${local.region}.${data.aws_partition.current.dns_suffix}"]
    assert variables()["secret_kms_key_arn"]["default"] is None


@needs_terraform
@pytest.mark.parametrize(("key", "statements"), [
    (None, 0), ("arn:aws:kms:us-east-1:123456789012:key/abc", 1)])
def test_terraform_adds_the_kms_statement_only_with_a_key(
        key: str | None, statements: int, tmp_path: Path) -> None:
    (statement,) = policy_statements()[1]
    assert console(tmp_path, f"length({expr(statement['for_each'])})",
                   secret_kms_key_arn=key) == statements


def test_the_vpc_access_managed_policy_is_attached() -> None:
    attachment = one_resource("aws_iam_role_policy_attachment", "vpc_access")
    assert attachment["policy_arn"] == VPC_ACCESS_POLICY
    assert expr(attachment["role"]) == "aws_iam_role.this.name"
    assert [b.labels for b in blocks("data") if b.labels[0] == "aws_partition"]


def test_only_lambda_assumes_the_role() -> None:
    role = one_resource("aws_iam_role", "this")
    assert expr(role["assume_role_policy"]) == "data.aws_iam_policy_document.assume.json"
    assert "managed_policy_arns" not in role
    assert "inline_policy" not in role
    document = next(b.body for b in blocks("data")
                    if b.labels == ("aws_iam_policy_document", "assume"))
    (statement,) = document["statement"]
    assert statement["actions"] == ["sts:AssumeRole"]
    principal = single(statement, "principals")
    assert principal == {"type": "Service", "identifiers": ["lambda.amazonaws.com"]}


# Failure class 8: Secrets Manager unreachable (endpoint and its group), cluster unreachable.


def test_the_secrets_manager_endpoint_is_made_on_request() -> None:
    declared = variables()["create_secrets_manager_endpoint"]
    assert expr(declared["type"]) == "bool"
    assert declared["default"] is False
    endpoint = one_resource("aws_vpc_endpoint", "secretsmanager")
    assert expr(endpoint["count"]) == "var.create_secrets_manager_endpoint ? 1 : 0"
    assert endpoint["vpc_endpoint_type"] == "Interface"
    assert endpoint["private_dns_enabled"] is True
    assert expr(endpoint["service_name"]) == "local.secrets_manager_service"
    assert module_locals()["secrets_manager_service"] == (
        "com.amazonaws.${local.region}.secretsmanager")
    assert [expr(g) for g in endpoint["security_group_ids"]] == [
        "aws_security_group.secrets_manager_endpoint[0].id"]
    admit = one_resource("aws_vpc_security_group_ingress_rule", "endpoint_from_function")
    assert expr(admit["security_group_id"]) == "aws_security_group.secrets_manager_endpoint[0].id"
    assert expr(admit["referenced_security_group_id"]) == "aws_security_group.function.id"
    assert (admit["from_port"], admit["to_port"], admit["ip_protocol"]) == (443, 443, "tcp")
    # An existing endpoint's group can be given, and then admits the function too.
    existing = one_resource("aws_vpc_security_group_ingress_rule",
                            "existing_endpoint_from_function")
    assert expr(existing["security_group_id"]) == (
        "var.secrets_manager_endpoint_security_group_id")
    assert expr(existing["referenced_security_group_id"]) == "aws_security_group.function.id"
    assert existing["from_port"] == 443


def test_a_check_warns_when_the_vpc_has_no_secrets_manager_endpoint() -> None:
    checks = {b.labels[0]: b.body for b in blocks("check")}
    assert "secrets_manager_endpoint" in checks
    check = checks["secrets_manager_endpoint"]
    (scoped,) = check["data"]
    lookup = scoped["aws_vpc_endpoint"]["secretsmanager"]
    assert expr(lookup["vpc_id"]) == "var.vpc_id"
    assert expr(lookup["service_name"]) == "local.secrets_manager_service"
    # Looked up after the module's own endpoint exists, so a first apply does not warn.
    assert [expr(d) for d in lookup["depends_on"]] == ["aws_vpc_endpoint.secretsmanager"]
    conditions = " ".join(a["condition"] for a in check["assert"])
    assert 'data.aws_vpc_endpoint.secretsmanager.state == "available"' in conditions
    assert "data.aws_vpc_endpoint.secretsmanager.private_dns_enabled" in conditions
    assert any("create_secrets_manager_endpoint" in a["error_message"] for a in check["assert"])


# The module as a whole.


def test_every_reference_in_the_module_is_declared() -> None:
    """What ``terraform validate`` would catch first, without the provider."""
    declared_resources = {b.labels for b in blocks("resource")}
    declared_data = {b.labels for b in blocks("data")}
    for check in blocks("check"):
        for scoped in check.body.get("data", []):
            declared_data |= {(t, n) for t, named in scoped.items() for n in named}
    declared_vars, declared_locals = set(variables()), set(module_locals())
    for path in module_files():
        for text in strings(parse(path)):
            for name in re.findall(r"(?<![\w.])var\.(\w+)", text):
                assert name in declared_vars, f"{path.name}: var.{name}"
            for name in re.findall(r"(?<![\w.])local\.(\w+)", text):
                assert name in declared_locals, f"{path.name}: local.{name}"
            for type_, name in re.findall(r"(?<![\w.])data\.(aws_\w+)\.(\w+)", text):
                assert (type_, name) in declared_data, f"{path.name}: data.{type_}.{name}"
            for type_, name in re.findall(r"(?<![\w.])(aws_\w+)\.(\w+)", text):
                assert (type_, name) in declared_resources, f"{path.name}: {type_}.{name}"


def test_variables_and_outputs_are_declared_and_documented() -> None:
    declared = variables()
    assert declared["name"]["default"] == "aurora-migrations-runner"
    for name in ("environment", "vpc_id", "subnet_ids", "cluster_security_group_id",
                 "db_secret_arn", "bundle_path"):
        assert "default" not in declared[name], f"{name} must be required"
    readme = (MODULE / "README.md").read_text(encoding="utf-8")
    for name, body in declared.items():
        assert body.get("description"), f"variable {name} has no description"
        assert "type" in body, f"variable {name} has no type"
        assert f"`{name}`" in readme, f"variable {name} is not in the README"
    outputs = {b.labels[0]: b.body for b in blocks("output")}
    expected = {"function_name": "aws_lambda_function.this.function_name",
                "function_arn": "aws_lambda_function.this.arn",
                "security_group_id": "aws_security_group.function.id",
                "role_arn": "aws_iam_role.this.arn",
                "log_group_name": "aws_cloudwatch_log_group.this.name"}
    for name, value in expected.items():
        assert expr(outputs[name]["value"]) == value
    for name, body in outputs.items():
        assert body.get("description"), f"output {name} has no description"
        assert f"`{name}`" in readme, f"output {name} is not in the README"


def test_the_providers_are_pinned() -> None:
    (settings,) = blocks("terraform")
    assert settings.file == "versions.tf"
    (providers,) = settings.body["required_providers"]
    assert providers["aws"]["source"] == "hashicorp/aws"
    assert re.fullmatch(r">= ?5(\.\d+)*", providers["aws"]["version"])
    assert re.fullmatch(r">= ?1\.([5-9]|\d\d)(\.\d+)*", settings.body["required_version"])


def test_the_readme_walkthrough_matches_the_module() -> None:
    readme = (MODULE / "README.md").read_text(encoding="utf-8")
    bundle = re.search(r"alquimista-schema bundle --python (\S+) --arch (\S+) --output (\S+)",
                       readme)
    assert bundle, "the README has no bundle command"
    assert f"python{bundle.group(1)}" == function()["runtime"]
    assert bundle.group(2) == variables()["architecture"]["default"]
    assert "terraform apply" in readme
    assert "alquimista-schema invoke --function aurora-migrations-runner-dev --action upgrade" in (
        readme)


@needs_terraform
def test_terraform_fmt_is_clean(tmp_path: Path) -> None:
    done = terraform(["fmt", "-check", "-recursive", "-diff", "deploy/terraform"], ROOT, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
