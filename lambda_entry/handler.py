"""AWS Lambda entry point: hand the event to the library, return its answer.

The runner (and with it the Secrets Manager client and the cached secret) is made
once per container, on first use, and reused by warm invocations.
"""

from __future__ import annotations

from typing import Any

from alquimista_schema.aws.runner import Runner

_runner: Runner | None = None


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Answer one event; see the README's event protocol."""
    global _runner
    if _runner is None:
        _runner = Runner.from_environment()
    return _runner.handle(event, request_id=getattr(context, "aws_request_id", "local"),
                          remaining_ms=getattr(context, "get_remaining_time_in_millis", None))
