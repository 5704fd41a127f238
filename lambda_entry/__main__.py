"""Run the Lambda handler on this machine: ``python -m lambda_entry '{"action": "current"}'``.

The real handler, in this process. Outside Lambda the runner reads the database from
DATABASE_URL when no DB_SECRET_ARN is set (e.g. the local database:
``DATABASE_URL=$(alquimista-schema dev-db url --show-password)``). The step log goes to
stderr, the answer to stdout as JSON; the exit status is 1 when the answer is an error.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from types import SimpleNamespace

from alquimista_schema.aws.runner import JsonLog, Runner
from lambda_entry import handler as entry

TIMEOUT_SECONDS = 900  # Lambda's longest


def main(argv: list[str]) -> int:
    try:
        event = json.loads(argv[0]) if argv else {}
    except json.JSONDecodeError as exc:
        print(f"error: the event is not JSON ({exc.msg}); e.g. '{{\"action\": \"current\"}}'",
              file=sys.stderr)
        return 2
    entry._runner = Runner.from_environment()
    entry._runner.log = JsonLog(sys.stderr)
    ends = time.monotonic() + TIMEOUT_SECONDS
    context = SimpleNamespace(
        aws_request_id=f"local-{uuid.uuid4().hex[:8]}",
        get_remaining_time_in_millis=lambda: int((ends - time.monotonic()) * 1000))
    answer = entry.handler(event, context)
    print(json.dumps(answer, indent=2))
    return 1 if answer.get("status") == "error" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
