"""What the deploy step's tests share: its handlers' module, the runner's audit, a stack in
moto's CloudFormation, and the provider framework's harness (tests/support/framework_harness.py)
around the real handlers and the real runner.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy.engine import URL

from alquimista_schema.connect.database import connect
from alquimista_schema.runtime import audit
from tests.deploy.test_cdk import synthesize
from tests.deploy.values import OPERATIONS, ROOT, context
from tests.support import framework_harness
from tests.support.framework_harness import Harness, Provider
from tests.support.helpers import TLS, Invoke, missing, secret_for

RUNNER, DECIDE, POLL = ("aurora-migrations-runner-dev", "aurora-migrations-deploy-dev",
                        "aurora-migrations-deploy-poll-dev")
RUNNER_LOGS = "AlquimistaSchemaRunner-dev-Logs0123"


def deploy_step() -> ModuleType:
    path = ROOT / "deploy" / "cdk" / "migrate_on_deploy" / "index.py"
    spec = importlib.util.spec_from_file_location("migrate_on_deploy", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def applied_runs(url: URL) -> list[list[str]]:
    """The revisions each audited run applied (a noop run leaves no row)."""
    with connect(url) as conn:
        return [[a["revision"] for a in row["applied"]] for row in audit.entries(conn)]


@pytest.fixture
def moto_stack(aws: Any, moto_endpoint: str,
               monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """A stack in moto's CloudFormation, in the status a test gives (DescribeStacks real)."""
    import boto3
    from moto.cloudformation.models import cloudformation_backends

    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", moto_endpoint)

    def make(status: str) -> str:
        client = boto3.client("cloudformation")
        stack_id = str(client.create_stack(StackName=f"Runner{int(time.time() * 1e6)}",
                                           TemplateBody=json.dumps({"Resources": {"Topic": {
                                               "Type": "AWS::SNS::Topic"}}}))["StackId"])
        region = client.meta.region_name
        cloudformation_backends["123456789012"][region].stacks[stack_id].status = status
        return stack_id
    return make


# --- the provider framework's real code, under node ----------------------------------------


@pytest.fixture(scope="module")
def provider(node: str, tmp_path_factory: pytest.TempPathFactory,
             bundle: Path) -> Provider:
    """A synth whose waiter gives up after 60 s (2 polls after the first, 30 s apart)."""
    folder = tmp_path_factory.mktemp("framework")
    synthesis = synthesize(folder, context(bundle, **OPERATIONS, migrateTotalTimeout="60"))
    return Provider.from_cdk_out(synthesis.outdir, synthesis.json)


@pytest.fixture(scope="session")
def sdk() -> Path:
    """The SDK modules framework.js requires, installed from the lockfile when absent (npm
    ci, as the Makefile's step does): a machine without npm skips, CI=true fails."""
    found = framework_harness.sdk_modules() or framework_harness.install_sdk()
    if found is None:
        missing("the AWS SDK for JS v3 modules framework.js requires",
                f"{framework_harness.INSTALL}; it needs npm and the npm registry")
    return found


@dataclass
class Deployment:
    """The harness around an empty database, and the Migration resource's properties."""

    harness: Harness
    url: URL
    props: dict[str, Any]
    moto_stack: Callable[[str], str]


@pytest.fixture
def deployment(provider: Provider, node: str, sdk: Path, tls: TLS,
               invoke: Invoke, empty_url: URL, make_secret: Callable[..., str],
               moto_stack: Callable[[str], str],
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    """The template's three functions served by the harness: the two user handlers of
    index.py, in this process with the poll's environment, and the real runner (its lock
    wait 1 s, so a held lock answers LOCK_TIMEOUT quickly). Waits run at 1/50 speed."""
    step, arn = deploy_step(), make_secret(secret_for(empty_url))
    poll = provider.named("index.is_complete")
    monkeypatch.setenv("READ_TIMEOUT_SECONDS", poll["env"]["READ_TIMEOUT_SECONDS"])
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", POLL)
    handlers = {DECIDE: (step.on_event, provider.named("index.on_event")["timeout"]),
                POLL: (step.is_complete, poll["timeout"]),
                RUNNER: (lambda event, ctx: invoke(event, secret=arn,
                                                   env={"LOCK_WAIT_SECONDS": "1"}), 300)}
    with framework_harness.harness(provider, node, ca=tls.ca, cert=tls.ca.parent / "server.pem",
                                   key=tls.ca.parent / "server.key", handlers=handlers,
                                   speed=0.02) as harness:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", harness.lambda_api.endpoint)
        props = {"FunctionName": RUNNER, "Target": "head", "BundleHash": "b1",
                 "RunnerLogGroup": RUNNER_LOGS}
        yield Deployment(harness, empty_url, props, moto_stack)


def statuses(answers: list[Any]) -> list[str]:
    return [a.get("error_code") or a["status"] for a in answers]
