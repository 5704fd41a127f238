"""The CDK provider framework's REAL code (asset framework.js of a synth) under node, around
the REAL deploy-step handlers (migrate_on_deploy/index.py) and the REAL runner.

What is real: framework.js, outbound.js, cfn-response.js (from cdk.out), the AWS SDK for JS
v3 they require (npm, tests/deploy/framework/package-lock.json), index.py, the runner
(lambda_entry) over PostgreSQL, DescribeStacks (moto). What stands in, written by us:

* a Lambda API (Invoke, GetFunction) that runs the Python handlers in this process, and can
  lose the answer of an Invoke after the handler ran (the connection closed unanswered);
* Step Functions (tests/support/framework_sfn.py), interpreting the waiter's definition
  from the template;
* CloudFormation's side: it calls the framework's onEvent (as Lambda would, one node
  process per call, tests/deploy/framework/run.js) and receives the response PUT on an
  HTTPS server whose certificate the test CA signed (NODE_EXTRA_CA_CERTS).
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

from tests.support import framework_sfn
from tests.support.serving import send_json, serving

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "deploy" / "framework" / "run.js"
SDK = Path(os.environ.get("FRAMEWORK_SDK_DIR", ROOT / ".venv" / "framework-sdk"))
"""Where `npm ci` put the SDK modules (the Makefile's framework-sdk step)."""
ACCOUNT, REGION = "123456789012", "us-east-1"
NODE_SECONDS = 120


PACKAGE = ROOT / "tests" / "deploy" / "framework"
INSTALL = ("mkdir -p .venv/framework-sdk && cp tests/deploy/framework/package.json "
           "tests/deploy/framework/package-lock.json .venv/framework-sdk/ && "
           "npm ci --prefix .venv/framework-sdk --no-audit --no-fund")


def install_sdk() -> Path | None:
    """``npm ci`` the lockfile's SDK modules into SDK; None when npm is missing or fails."""
    npm = shutil.which("npm")
    if npm is None:
        return None
    SDK.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(PACKAGE / name, SDK / name)
    done = subprocess.run([npm, "ci", "--prefix", str(SDK), "--no-audit", "--no-fund",
                           "--loglevel=error"], capture_output=True, text=True, timeout=300,
                          check=False)
    return sdk_modules() if done.returncode == 0 else None


def sdk_modules() -> Path | None:
    """The node_modules folder with the SDK modules framework.js requires, if installed."""
    modules = SDK / "node_modules"
    wanted = ("@aws-sdk/client-lambda", "@aws-sdk/client-sfn")
    return modules if all((modules / name / "package.json").is_file() for name in wanted) \
        else None


# --- the synthesized template, resolved as CloudFormation would ------------------------------


def arn_of(resource: dict[str, Any], logical: str) -> str:
    kind = resource["Type"]
    if kind == "AWS::StepFunctions::StateMachine":
        return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{logical}"
    name = resource.get("Properties", {}).get("FunctionName", logical)
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def resolve(value: Any, resources: dict[str, Any]) -> Any:
    """Fn::GetAtt .Arn, Ref (of a state machine) and Fn::Join, the way the template uses them."""
    if isinstance(value, dict) and len(value) == 1:
        [(key, arg)] = value.items()
        if key == "Fn::GetAtt" and arg[1] == "Arn":
            return arn_of(resources[arg[0]], arg[0])
        if key == "Ref":
            return arn_of(resources[arg], arg)
        if key == "Fn::Join":
            return arg[0].join(resolve(part, resources) for part in arg[1])
    if isinstance(value, dict):
        return {k: resolve(v, resources) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, resources) for v in value]
    return value


@dataclass(frozen=True)
class Provider:
    """The framework as the template makes it: its code, functions and waiter."""

    framework_js: Path
    functions: dict[str, dict[str, Any]]
    """ARN -> {"handler", "env", "timeout", "name"} of every function in the template."""
    waiter: tuple[str, dict[str, Any]]
    """The waiter state machine's ARN and definition."""

    @classmethod
    def from_cdk_out(cls, outdir: Path, template: dict[str, Any]) -> Provider:
        resources = template["Resources"]
        functions, waiter = {}, None
        for logical, resource in resources.items():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::Lambda::Function":
                functions[arn_of(resource, logical)] = {
                    "handler": props["Handler"], "timeout": props.get("Timeout", 3),
                    "name": props.get("FunctionName", logical),
                    "env": resolve(props.get("Environment", {}).get("Variables", {}),
                                   resources)}
            elif resource["Type"] == "AWS::StepFunctions::StateMachine":
                waiter = (arn_of(resource, logical),
                          json.loads(resolve(props["DefinitionString"], resources)))
        [framework_js] = outdir.glob("asset.*/framework.js")
        assert waiter is not None, "no waiter state machine: is isComplete set?"
        return cls(framework_js, functions, waiter)

    def named(self, handler: str) -> dict[str, Any]:
        [found] = [f for f in self.functions.values() if f["handler"] == handler]
        return found


# --- a Lambda API for the Python handlers ----------------------------------------------------


Handler = Callable[[Any, Any], Any]


@dataclass
class LambdaAPI:
    handlers: dict[str, tuple[Handler, int]]
    """Function name -> (handler(event, context), timeout in seconds)."""
    lose: dict[str, int] = field(default_factory=dict)
    """Function name -> how many of its next Invokes lose their answer (after running)."""
    endpoint: str = ""
    invocations: list[tuple[str, Any, Any]] = field(default_factory=list)
    """(function name, event, what it answered) for each Invoke, in order."""
    get_function: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, name: str, event: Any) -> tuple[Any, str | None]:
        handler, timeout = self.handlers[name]
        ends = time.monotonic() + timeout
        context = SimpleNamespace(
            aws_request_id=str(uuid.uuid4()), function_name=name,
            get_remaining_time_in_millis=lambda: int((ends - time.monotonic()) * 1000))
        try:
            answer, error = handler(event, context), None
        except Exception as exc:
            answer, error = {"errorMessage": str(exc), "errorType": type(exc).__name__,
                             "stackTrace": traceback.format_tb(exc.__traceback__)}, "Unhandled"
        with self.lock:
            self.invocations.append((name, event, answer))
        return answer, error

    def of(self, name: str) -> list[Any]:
        """What ``name`` answered, in order."""
        return [answer for called, _, answer in self.invocations if called == name]


def _lambda_handler(api: LambdaAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _name(self) -> str:
            return unquote(self.path.split("/")[3].split("?")[0]).split(":")[-1]

        def do_GET(self) -> None:  # GetFunction (waitUntilFunctionActiveV2)
            with api.lock:
                api.get_function += 1
            name = self._name()
            config = {"FunctionName": name, "State": "Active", "LastUpdateStatus": "Successful"}
            send_json(self, 200, {"Configuration": config})

        def do_POST(self) -> None:  # Invoke
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            name = self._name()
            answer, error = api.call(name, json.loads(body) if body else None)
            with api.lock:
                lost = api.lose.get(name, 0) > 0
                if lost:
                    api.lose[name] -= 1
            if lost:  # ran, then the connection closed unanswered: a transport error
                self.close_connection = True
                return
            headers = {"X-Amz-Executed-Version": "$LATEST"}
            if error:
                headers["X-Amz-Function-Error"] = error
            send_json(self, 200, json.dumps(answer).encode(), headers)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


# --- CloudFormation's side: the response PUT -------------------------------------------------


@dataclass
class Responses:
    received: list[dict[str, Any]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    port: int = 0

    def wait(self, count: int, timeout: float) -> list[dict[str, Any]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)


def _response_handler(responses: Responses) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_PUT(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            send_json(self, 200, b"")
            with responses.arrived:
                responses.received.append({"path": self.path, **body})
                responses.arrived.notify_all()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def https_responses(cert: Path, key: Path) -> Iterator[Responses]:
    responses = Responses()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _response_handler(responses))
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    responses.port = server.server_address[1]
    with serving(server, poll_interval=0.1):
        yield responses


# --- the whole deployment side ---------------------------------------------------------------


@dataclass
class Harness:
    provider: Provider
    node: str
    ca: Path
    lambda_api: LambdaAPI
    sfn: framework_sfn.StepFunctions
    responses: Responses

    def node_env(self, function: dict[str, Any]) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR")}
        return {**keep, **function["env"], "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_LAMBDA_FUNCTION_NAME": function["name"],
                "AWS_ENDPOINT_URL_LAMBDA": self.lambda_api.endpoint,
                "AWS_ENDPOINT_URL_SFN": self.sfn.endpoint, "NODE_PATH": str(sdk_modules()),
                "NODE_EXTRA_CA_CERTS": str(self.ca),
                "CFN_RESPONSE_PORT": str(self.responses.port)}

    def framework(self, arn: str, event: Any) -> Any:
        """Run one framework function (onEvent, isComplete, onTimeout) once, under node."""
        function = self.provider.functions[arn]
        name = function["handler"].removeprefix("framework.")
        done = subprocess.run([self.node, str(DRIVER), str(self.provider.framework_js), name],
                              input=json.dumps(event), capture_output=True, text=True,
                              env=self.node_env(function), timeout=NODE_SECONDS, check=False)
        last = next((line for line in reversed(done.stdout.splitlines())
                     if line.startswith(("RESULT ", "ERROR "))), None)
        if last is None:
            raise AssertionError(f"node {name}: {done.returncode}\n{done.stdout}\n{done.stderr}")
        kind, _, body = last.partition(" ")
        if kind == "ERROR":  # as Lambda answers a thrown error, and Step Functions names it
            raise framework_sfn.TaskFailed(json.loads(body)["errorType"], body)
        return json.loads(body)

    def request(self, kind: str, stack_id: str, props: dict[str, Any],
                old: dict[str, Any] | None = None) -> dict[str, Any]:
        """A CloudFormation request for the Migration resource, with its response URL."""
        request_id = str(uuid.uuid4())
        event = {"RequestType": kind, "ServiceToken": self.on_event_arn(),
                 "ResponseURL": f"https://localhost/cfn/{request_id}?X-Amz-Signature=x",
                 "StackId": stack_id, "RequestId": request_id,
                 "LogicalResourceId": "Migration",
                 "ResourceType": "Custom::AlquimistaSchemaMigration",
                 "ResourceProperties": {"ServiceToken": self.on_event_arn(), **props}}
        if kind != "Create":
            event["PhysicalResourceId"] = f"migration-{props['FunctionName']}"
            event["OldResourceProperties"] = old or props
        return event

    def on_event_arn(self) -> str:
        return next(arn for arn, f in self.provider.functions.items()
                    if f["handler"] == "framework.onEvent")

    def deploy(self, event: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """Send ``event`` to the framework's onEvent; wait for the response CloudFormation
        gets (from onEvent, or later from the waiter)."""
        before = len(self.responses.received)
        self.framework(self.on_event_arn(), event)
        received = self.responses.wait(before + 1, timeout)
        assert len(received) > before, f"no response within {timeout} s"
        response = received[before]
        assert response["path"].startswith(f"/cfn/{event['RequestId']}?")
        return response


@contextmanager
def harness(provider: Provider, node: str, *, ca: Path, cert: Path, key: Path,
            handlers: dict[str, tuple[Handler, int]], speed: float) -> Iterator[Harness]:
    """Serve the stand-ins for the block."""
    api = LambdaAPI(handlers)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _lambda_handler(api))
    server.daemon_threads = True
    api.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    machine, definition = provider.waiter
    holder: list[Harness] = []
    sfn = framework_sfn.StepFunctions({machine: definition},
                                      lambda arn, data: holder[0].framework(arn, data),
                                      speed=speed)
    with ExitStack() as stack:
        stack.enter_context(serving(server, poll_interval=0.1))
        stack.enter_context(framework_sfn.serve(sfn))
        responses = stack.enter_context(https_responses(cert, key))
        holder.append(Harness(provider, node, ca, api, sfn, responses))
        yield holder[0]
