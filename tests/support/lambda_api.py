"""A local Lambda API that runs Python handlers in this process, for boto3 over real HTTP.

A stand-in, written from botocore's service model for Lambda (``lambda/2015-03-31``):

* Invoke: ``POST /2015-03-31/functions/{FunctionName}/invocations``. The answer's body is the
  handler's JSON; an exception is Lambda's error payload with ``X-Amz-Function-Error:
  Unhandled``; ``X-Amz-Log-Type: Tail`` adds ``X-Amz-Log-Result``, base64 of the last 4 KB
  of the invocation's log (START, what the handler wrote to stdout, END, REPORT).
  ``RequestResponse`` runs the handler, ``DryRun`` answers 204 without running it.
* GetFunctionConfiguration: ``GET /2015-03-31/functions/{FunctionName}/configuration``, the
  configuration itself (FunctionName, FunctionArn, Timeout, State ``Active``,
  LastUpdateStatus ``Successful``, ...).

A name off the model's FunctionName pattern is refused as AWS refuses it (400
``ValidationException``); a function not served here gets Lambda's 404
``ResourceNotFoundException`` (``{"Type": "User", "message": "Function not found: arn:..."}``,
header ``x-amzn-ErrorType``). Each function's environment is set in ``os.environ`` for its
call, with the variables Lambda defines (AWS_LAMBDA_FUNCTION_NAME, AWS_REGION: the region
the request was signed for), and calls run one at a time. The timeout is the context's
remaining time only: nothing stops a handler that overruns it. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.serving import send_json, serving

ACCOUNT = "123456789012"
LOG_TAIL_BYTES = 4096
Handler = Callable[[Any, Any], Any]


def _name_pattern() -> re.Pattern[str]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("lambda")
    inputs = model.operation_model("Invoke").input_shape
    assert inputs is not None
    shape = inputs.members["FunctionName"]
    pattern: str = shape.metadata["pattern"]
    bare = "(function:)?([a-zA-Z0-9-_\\.]+)"
    assert bare in pattern, f"botocore's FunctionName pattern changed: {pattern}"
    return re.compile(pattern.replace(bare, "(function:)?(?P<name>[a-zA-Z0-9-_\\.]+)"))


FUNCTION_NAME = _name_pattern()


@dataclass
class Function:
    handler: Handler
    timeout: int = 300
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class LambdaAPI:
    functions: dict[str, Function]
    endpoint: str = ""
    invocations: list[tuple[str, Any, Any]] = field(default_factory=list)
    """(function name, event, answer) of each Invoke that ran, in order."""
    configurations: list[str] = field(default_factory=list)
    """The function each GetFunctionConfiguration named."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, name: str, event: Any, region: str) -> tuple[Any, str | None, str]:
        """Run ``name``'s handler as Lambda would: its answer, function error and log."""
        function = self.functions[name]
        request_id = str(uuid.uuid4())
        ends = time.monotonic() + function.timeout
        context = SimpleNamespace(
            aws_request_id=request_id, function_name=name, function_version="$LATEST",
            invoked_function_arn=_arn(name, region), memory_limit_in_mb="512",
            log_group_name=f"/aws/lambda/{name}",
            get_remaining_time_in_millis=lambda: int((ends - time.monotonic()) * 1000))
        defined = {"AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                   "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "AWS_REGION": region,
                   "AWS_DEFAULT_REGION": region, "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"}
        with self.lock, _environment({**function.environment, **defined}), \
                _stdout() as log:
            print(f"START RequestId: {request_id} Version: $LATEST")
            started = time.monotonic()
            try:
                answer, error = function.handler(event, context), None
            except Exception as exc:
                answer, error = {"errorMessage": str(exc), "errorType": type(exc).__name__,
                                 "requestId": request_id,
                                 "stackTrace": traceback.format_tb(exc.__traceback__)}, "Unhandled"
            print(f"END RequestId: {request_id}")
            print(f"REPORT RequestId: {request_id}\tDuration: "
                  f"{(time.monotonic() - started) * 1000:.2f} ms")
            self.invocations.append((name, event, answer))
        return answer, error, log.getvalue()


def _arn(name: str, region: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _Tee(io.TextIOBase):
    """What this thread writes to stdout goes to its log too (Lambda's log of the call)."""

    def __init__(self, inner: Any, log: io.StringIO) -> None:
        self.inner, self.log, self.thread = inner, log, threading.get_ident()

    def write(self, text: str) -> int:
        if threading.get_ident() == self.thread:
            self.log.write(text)
        return int(self.inner.write(text))

    def flush(self) -> None:
        self.inner.flush()


@contextmanager
def _stdout() -> Iterator[io.StringIO]:
    log, inner = io.StringIO(), sys.stdout
    sys.stdout = _Tee(inner, log)
    try:
        yield log
    finally:
        sys.stdout = inner


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: LambdaAPI) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = api


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _route(self, operation: str) -> tuple[str, str] | None:
        """The function's name and the signed region, or None (refused, answered)."""
        parts = urlsplit(self.path)
        found = re.fullmatch(rf"/2015-03-31/functions/([^/]+)/{operation}", parts.path)
        signed = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/lambda/",
                           self.headers.get("Authorization", ""))
        region = signed.group(1) if signed else "us-east-1"
        if found is None:
            self._error(404, "UnknownOperationException", "Unknown operation")
            return None
        given = unquote(found.group(1))
        match = FUNCTION_NAME.fullmatch(given)
        if match is None or not 1 <= len(given) <= 256:
            self._error(400, "ValidationException",
                        f"1 validation error detected: Value '{given}' at 'functionName' "
                        "failed to satisfy constraint: Member must satisfy regular "
                        f"expression pattern: {FUNCTION_NAME.pattern}")
            return None
        name = match.group("name")
        qualifier = parse_qs(parts.query).get("Qualifier", ["$LATEST"])[0]
        if name not in self.server.api.functions or qualifier != "$LATEST":
            qualified = "" if qualifier == "$LATEST" else f":{qualifier}"
            self._error(404, "ResourceNotFoundException",
                        f"Function not found: {_arn(name, region)}{qualified}")
            return None
        return name, region

    def do_GET(self) -> None:  # GetFunctionConfiguration
        routed = self._route("configuration")
        if routed is None:
            return
        name, region = routed
        api = self.server.api
        with api.lock:
            api.configurations.append(name)
        function = api.functions[name]
        send_json(self, 200, {
            "FunctionName": name, "FunctionArn": _arn(name, region),
            "Runtime": "python3.12", "Handler": "lambda_entry.handler.handler",
            "Timeout": function.timeout, "MemorySize": 512, "Version": "$LATEST",
            "Environment": {"Variables": function.environment},
            "State": "Active", "LastUpdateStatus": "Successful",
            "PackageType": "Zip", "Architectures": ["x86_64"]})

    def do_POST(self) -> None:  # Invoke
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        routed = self._route("invocations")
        if routed is None:
            return None
        name, region = routed
        kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if kind == "DryRun":
            return send_json(self, 204, b"")
        if kind != "RequestResponse":
            return self._error(400, "InvalidParameterValueException",
                               f"InvocationType {kind} is not served by this stand-in")
        try:
            event = json.loads(body) if body else {}
        except json.JSONDecodeError:
            return self._error(400, "InvalidRequestContentException",
                               "Could not parse request body into json")
        answer, error, log = self.server.api.call(name, event, region)
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        if error:
            headers["X-Amz-Function-Error"] = error
        if self.headers.get("X-Amz-Log-Type") == "Tail":
            tail = log.encode()[-LOG_TAIL_BYTES:]
            headers["X-Amz-Log-Result"] = base64.b64encode(tail).decode()
        return send_json(self, 200, json.dumps(answer, default=str).encode(), headers)

    def _error(self, status: int, kind: str, message: str) -> None:
        send_json(self, status, {"Type": "User", "message": message},
                  {"x-amzn-ErrorType": kind})

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serve(functions: dict[str, Function]) -> Iterator[LambdaAPI]:
    """Serve ``functions`` (name -> Function) on a free port until the block ends."""
    api = LambdaAPI(functions)
    server = _Server(api)
    api.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    with serving(server, poll_interval=0.1):
        yield api
