"""What the runner function is, in plain values: read by the stack and by the tests.

Imports nothing (not even aws_cdk), so a test that starts the bundle the way Lambda
does can take the handler string and runtime from the same place the stack does.
"""

HANDLER = "lambda_entry.handler.handler"
RUNTIME = "python3.12"
PYTHON_VERSION = "3.12"
ARCHITECTURE = "x86_64"
TIMEOUT_SECONDS = 300
RESERVED_CONCURRENCY = 1
DEFAULT_BUNDLE = "dist/runner.zip"
