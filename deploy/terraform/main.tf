# The migrations runner: one Lambda function in the cluster's VPC, its log group and its
# environment. No resource here takes a `tags` argument: tags come only from the
# provider's default_tags (see examples/basic), so each key has exactly one spelling.

data "aws_partition" "current" {}

# `id` is the region's name in every AWS provider from 5.0 on (`name` is deprecated in 6.x).
data "aws_region" "current" {}

locals {
  region = data.aws_region.current.id

  # What the module itself sets. extra_environment cannot name these (nor any reserved
  # name: see its validations), and they are merged last, so they always win.
  module_environment = {
    DB_SECRET_ARN = var.db_secret_arn
    ENVIRONMENT   = var.environment
  }
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "this" {
  function_name = var.name
  description   = "alquimista-schema migrations runner (${var.environment})"
  role          = aws_iam_role.this.arn

  # A zip built beforehand by `alquimista-schema bundle`: nothing is built here (no Docker).
  filename         = var.bundle_path
  source_code_hash = filebase64sha256(var.bundle_path)
  handler          = "lambda_entry.handler.handler"
  runtime          = "python3.12"
  architectures    = [var.architecture]
  timeout          = var.timeout
  memory_size      = var.memory_size

  # One run at a time: a second invocation is throttled instead of racing the first
  # (the runner's advisory lock is the second line of defence).
  reserved_concurrent_executions = 1

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.function.id]
  }

  environment {
    variables = merge(var.extra_environment, local.module_environment)
  }

  # The log group exists (with its retention) before the first invocation could create it,
  # and the role can manage network interfaces before Lambda checks it at creation.
  depends_on = [
    aws_cloudwatch_log_group.this,
    aws_iam_role_policy.this,
    aws_iam_role_policy_attachment.vpc_access,
  ]
}

# A migration that failed is reported, never retried behind the caller's back.
resource "aws_lambda_function_event_invoke_config" "this" {
  function_name          = aws_lambda_function.this.function_name
  maximum_retry_attempts = 0
}
