# Deploys the migrations runner next to an existing Aurora cluster.
#
#   alquimista-schema bundle --python 3.12 --arch x86_64 --output dist/runner.zip
#   terraform init && terraform apply -var-file=dev.tfvars
#
# Tags are set here, once, through default_tags (PascalCase keys, one spelling each);
# the module sets none of its own.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "region" {
  description = "Region of the cluster."
  type        = string
  default     = "us-east-1"
}

variable "environment" {
  description = "dev, staging, prod, ..."
  type        = string
  default     = "dev"
}

variable "vpc_id" {
  description = "VPC of the Aurora cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets for the function (isolated ones are fine)."
  type        = list(string)
}

variable "cluster_security_group_id" {
  description = "Security group of the Aurora cluster."
  type        = string
}

variable "db_secret_arn" {
  description = "Full ARN of the database secret."
  type        = string
}

variable "db_host" {
  description = "Writer endpoint of the cluster (for secrets that carry only username and password)."
  type        = string
}

variable "db_name" {
  description = "Database the schema lives in."
  type        = string
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "alquimista"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}

module "migrations_runner" {
  source = "../.."

  name                      = "aurora-migrations-runner-${var.environment}"
  environment               = var.environment
  vpc_id                    = var.vpc_id
  subnet_ids                = var.subnet_ids
  cluster_security_group_id = var.cluster_security_group_id
  db_secret_arn             = var.db_secret_arn
  bundle_path               = "${path.root}/../../../../dist/runner.zip"
  architecture              = "x86_64"

  create_secrets_manager_endpoint = true

  extra_environment = {
    DB_HOST = var.db_host
    DB_PORT = "5432"
    DB_NAME = var.db_name
  }
}

output "function_name" {
  value = module.migrations_runner.function_name
}

output "security_group_id" {
  value = module.migrations_runner.security_group_id
}
