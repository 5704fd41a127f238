"""The Lambda function's entry point (handler setting: lambda_entry.handler.handler)."""
