output "function_name" {
  description = "Name of the runner function (for `alquimista-schema invoke --function`)."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the runner function."
  value       = aws_lambda_function.this.arn
}

output "security_group_id" {
  description = "Security group of the function (already admitted by the cluster's group on the database port)."
  value       = aws_security_group.function.id
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the function."
  value       = aws_cloudwatch_log_group.this.name
}

output "secrets_manager_endpoint_id" {
  description = "Id of the Secrets Manager VPC endpoint this module made, or null."
  value       = one(aws_vpc_endpoint.secretsmanager[*].id)
}
