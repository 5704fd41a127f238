"""A stand-in for Step Functions, enough for the CDK provider framework's waiter: written by
us from the waiter's definition in the synthesized template, not AWS's code.

It serves StartExecution (the JSON 1.0 protocol the AWS SDK speaks, AWS_ENDPOINT_URL_SFN)
and runs each execution in a thread by interpreting the definition as the Amazon States
Language says, for the part the waiter uses: Task states whose Resource is a function ARN
(the task's output is the function's result; a function error is the error ``errorType``
with the Lambda payload as its Cause), Retry (ErrorEquals, IntervalSeconds, MaxAttempts,
BackoffRate: wait IntervalSeconds x BackoffRate^n before retry n+1), Catch (ErrorEquals,
Next; the state's output is ``{"Error", "Cause"}``), Next and End. Anything else in a
definition is refused (NotImplementedError), never guessed. Waits are multiplied by
``speed`` so a test sees the 30 s query interval pass in a fraction of a second: the
number of attempts and their order are the definition's.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.serving import send_json, serving

ALL = "States.ALL"


class TaskFailed(Exception):
    """A task's error, named as Step Functions names it: an error name and a cause."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause[:200]}")
        self.error = error
        self.cause = cause


Task = Callable[[str, Any], Any]
"""Run the function ``arn`` with ``input``; return its result or raise TaskFailed."""


@dataclass
class Execution:
    arn: str
    input: Any
    steps: list[tuple[str, float]] = field(default_factory=list)
    """Each task attempt: the state's name and when it started (time.monotonic)."""
    status: str = "RUNNING"
    output: Any = None
    done: threading.Event = field(default_factory=threading.Event)


def matches(names: list[str], error: str) -> bool:
    return ALL in names or error in names


def run(definition: dict[str, Any], task: Task, execution: Execution, *,
        speed: float = 1.0) -> None:
    """Interpret ``definition`` from StartAt to an End (or a failure)."""
    states, name, data = definition["States"], definition["StartAt"], execution.input
    try:
        while True:
            state = states[name]
            if state.get("Type") != "Task" or set(state) - {
                    "Type", "Resource", "Retry", "Catch", "Next", "End"}:
                raise NotImplementedError(f"state {name}: {sorted(state)} (stand-in)")
            try:
                data = _attempts(name, state, task, data, execution, speed)
            except TaskFailed as failed:
                caught = next((c for c in state.get("Catch", [])
                               if matches(c["ErrorEquals"], failed.error)), None)
                if caught is None:
                    raise
                name, data = caught["Next"], {"Error": failed.error, "Cause": failed.cause}
                continue
            if state.get("End"):
                execution.status, execution.output = "SUCCEEDED", data
                return
            name = state["Next"]
    except TaskFailed as failed:
        execution.status, execution.output = "FAILED", {"Error": failed.error,
                                                        "Cause": failed.cause}
    finally:
        execution.done.set()


def _attempts(name: str, state: dict[str, Any], task: Task, data: Any,
              execution: Execution, speed: float) -> Any:
    """One Task state: its first attempt, then its Retry rules, each counted on its own."""
    retried: dict[int, int] = {}
    while True:
        execution.steps.append((name, time.monotonic()))
        try:
            return task(state["Resource"], data)
        except TaskFailed as failed:
            rules = state.get("Retry", [])
            index = next((i for i, r in enumerate(rules)
                          if matches(r["ErrorEquals"], failed.error)), None)
            if index is None or retried.get(index, 0) >= rules[index].get("MaxAttempts", 3):
                raise
            rule, count = rules[index], retried.get(index, 0)
            wait = rule.get("IntervalSeconds", 1) * rule.get("BackoffRate", 2.0) ** count
            retried[index] = count + 1
            time.sleep(wait * speed)


@dataclass
class StepFunctions:
    """The StartExecution endpoint, and the executions it started."""

    definitions: dict[str, dict[str, Any]]
    """State machine ARN -> its definition."""
    task: Task
    speed: float = 1.0
    endpoint: str = ""
    executions: list[Execution] = field(default_factory=list)

    def start(self, machine: str, given: str) -> Execution:
        execution = Execution(f"{machine.replace(':stateMachine:', ':execution:')}:"
                              f"{uuid.uuid4().hex[:12]}", json.loads(given))
        self.executions.append(execution)
        threading.Thread(target=run, args=(self.definitions[machine], self.task, execution),
                         kwargs={"speed": self.speed}, daemon=True).start()
        return execution


def _handler_for(sfn: StepFunctions) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            target = self.headers.get("X-Amz-Target", "")
            if target != "AWSStepFunctions.StartExecution":
                return send_json(self, 400, {"__type": "UnknownOperationException",
                                             "message": f"{target} (stand-in)"})
            if body.get("stateMachineArn") not in sfn.definitions:
                return send_json(self, 400, {"__type": "StateMachineDoesNotExist",
                                             "message": str(body.get("stateMachineArn"))})
            execution = sfn.start(body["stateMachineArn"], body.get("input") or "{}")
            return send_json(self, 200, {"executionArn": execution.arn,
                                         "startDate": time.time()})

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve(sfn: StepFunctions) -> Iterator[StepFunctions]:
    """Serve StartExecution on 127.0.0.1 for the block (executions run in daemon threads)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(sfn))
    server.daemon_threads = True
    sfn.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    with serving(server, poll_interval=0.1):
        yield sfn
