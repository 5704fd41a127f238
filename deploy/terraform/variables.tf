variable "name" {
  description = "Name of the function, and of its role, log group and security groups. Unique per account and region."
  type        = string
  default     = "aurora-migrations-runner"

  validation {
    # Lambda function names and IAM role names: at most 64 of these characters.
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.name))
    error_message = "name must be 1 to 64 letters, digits, hyphens or underscores."
  }
}

variable "environment" {
  description = "Environment the function serves (dev, staging, prod, ...); passed as ENVIRONMENT. prod makes downgrades need a confirmation."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*$", var.environment))
    error_message = "environment must be lower case letters, digits and hyphens, starting with a letter (e.g. dev, prod)."
  }
}

variable "vpc_id" {
  description = "Id of the VPC that holds the Aurora cluster and the subnets."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must be a VPC id (vpc-...)."
  }
}

variable "subnet_ids" {
  description = "Subnets the function (and the Secrets Manager endpoint, when created) is placed in, used as given. Isolated subnets are fine: the function needs no route to the internet."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must name at least one subnet (two, in different availability zones, for availability)."
  }

  validation {
    condition     = alltrue([for id in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", id))])
    error_message = "Every entry of subnet_ids must be a subnet id (subnet-...)."
  }
}

variable "cluster_security_group_id" {
  description = "Security group of the Aurora cluster. This module adds to it one ingress rule: the database port from the function's security group."
  type        = string

  validation {
    condition     = can(regex("^sg-[0-9a-f]+$", var.cluster_security_group_id))
    error_message = "cluster_security_group_id must be a security group id (sg-...)."
  }
}

variable "database_port" {
  description = "Port the cluster listens on."
  type        = number
  default     = 5432

  validation {
    condition     = var.database_port >= 1 && var.database_port <= 65535 && floor(var.database_port) == var.database_port
    error_message = "database_port must be an integer between 1 and 65535."
  }
}

variable "db_secret_arn" {
  description = "Full ARN of the Secrets Manager secret holding the database credentials (RDS JSON). The role may read this secret and no other."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.db_secret_arn))
    error_message = "db_secret_arn must be the full ARN of a Secrets Manager secret (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-xxxxxx), not its name."
  }
}

variable "secret_kms_key_arn" {
  description = "ARN of the customer managed KMS key that encrypts the secret, if any. null when the secret uses the AWS managed key aws/secretsmanager."
  type        = string
  default     = null

  validation {
    condition     = var.secret_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.secret_kms_key_arn))
    error_message = "secret_kms_key_arn must be null or the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "bundle_path" {
  description = "Path of the function's zip, as built by `alquimista-schema bundle --python 3.12 --arch <architecture>`."
  type        = string

  validation {
    condition     = endswith(var.bundle_path, ".zip")
    error_message = "bundle_path must be the path of the .zip that `alquimista-schema bundle` writes."
  }
}

variable "architecture" {
  description = "Instruction set of the function; must be the one the bundle was built for (its database driver is compiled code)."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "timeout" {
  description = "Function timeout in seconds. The runner keeps a margin before it and shrinks statement_timeout to the time left."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout >= 60 && var.timeout <= 900
    error_message = "timeout must be between 60 and 900 seconds (connecting to a paused Serverless v2 cluster alone can take 45)."
  }
}

variable "memory_size" {
  description = "Function memory in MB."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the function's logs."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "create_secrets_manager_endpoint" {
  description = "Create an Interface VPC endpoint for Secrets Manager (private DNS) in subnet_ids, with a security group admitting HTTPS from the function. Leave false when the VPC already has one; a check then warns if none is found."
  type        = bool
  default     = false
}

variable "secrets_manager_endpoint_security_group_id" {
  description = "Security group of an existing Secrets Manager endpoint (when create_secrets_manager_endpoint is false). When given, this module adds to it one ingress rule: HTTPS from the function's security group."
  type        = string
  default     = null

  validation {
    condition     = var.secrets_manager_endpoint_security_group_id == null || can(regex("^sg-[0-9a-f]+$", var.secrets_manager_endpoint_security_group_id))
    error_message = "secrets_manager_endpoint_security_group_id must be null or a security group id (sg-...)."
  }
}

variable "extra_environment" {
  description = "More environment variables for the function: DB_HOST, DB_PORT, DB_NAME, DB_SSLROOTCERT, LOCK_WAIT_SECONDS, CONNECT_TIMEOUT_SECONDS, ... Names Lambda reserves or that would change the runtime are refused."
  type        = map(string)
  default     = {}

  validation {
    # Lambda's own rule for a variable name, which also rules out _HANDLER, _X_AMZN_TRACE_ID, ...
    condition     = alltrue([for k in keys(var.extra_environment) : can(regex("^[A-Za-z][A-Za-z0-9_]*$", k))])
    error_message = "extra_environment keys must start with a letter and hold only letters, digits and underscores."
  }

  validation {
    # AWS_REGION, AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SESSION_TOKEN, AWS_EXECUTION_ENV,
    # AWS_LAMBDA_*, LAMBDA_TASK_ROOT, LAMBDA_RUNTIME_DIR, _HANDLER, ...: Lambda sets them.
    condition     = alltrue([for k in keys(var.extra_environment) : !can(regex("^(AWS_|LAMBDA_|_)", upper(k)))])
    error_message = "extra_environment must not set names starting with AWS_, LAMBDA_ or _: Lambda reserves them (the region comes from the runtime)."
  }

  validation {
    condition     = alltrue([for k in keys(var.extra_environment) : !contains(["LANG", "TZ", "PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONHOME"], upper(k))])
    error_message = "extra_environment must not set LANG, TZ, PATH, LD_LIBRARY_PATH, PYTHONPATH or PYTHONHOME: the runtime owns them."
  }

  validation {
    condition     = alltrue([for k in keys(var.extra_environment) : !contains(["DB_SECRET_ARN", "ENVIRONMENT"], upper(k))])
    error_message = "extra_environment must not set DB_SECRET_ARN or ENVIRONMENT: use the db_secret_arn and environment variables."
  }
}
