# Network paths, all made here so nothing is added by hand and no other stack has to
# know about this one: function -> cluster on the database port, function -> Secrets
# Manager (its VPC endpoint) on 443. The subnets are used as given; none is looked up.

locals {
  secrets_manager_service = "com.amazonaws.${local.region}.secretsmanager"
}

data "aws_vpc" "this" {
  id = var.vpc_id
}

resource "aws_security_group" "function" {
  name        = "${var.name}-function"
  description = "alquimista-schema migrations runner: egress to the cluster and to Secrets Manager only"
  vpc_id      = var.vpc_id
  # No inline rules: Terraform removes the default allow-all egress, and the rules below
  # are the only ones.
}

resource "aws_vpc_security_group_egress_rule" "function_to_cluster" {
  security_group_id            = aws_security_group.function.id
  description                  = "PostgreSQL on the Aurora cluster"
  ip_protocol                  = "tcp"
  from_port                    = var.database_port
  to_port                      = var.database_port
  referenced_security_group_id = var.cluster_security_group_id
}

# HTTPS inside the VPC only (every IPv4 block of it): the Secrets Manager endpoint's
# addresses are in its subnets.
resource "aws_vpc_security_group_egress_rule" "function_to_https_in_vpc" {
  for_each = toset(concat(
    [data.aws_vpc.this.cidr_block],
    [for association in data.aws_vpc.this.cidr_block_associations : association.cidr_block],
  ))

  security_group_id = aws_security_group.function.id
  description       = "HTTPS to VPC endpoints (Secrets Manager)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

# The cluster admits the function. Made in this module, on the cluster's group, so the
# cluster's stack needs no reference to this one (no cycle, no manual step).
resource "aws_vpc_security_group_ingress_rule" "cluster_from_function" {
  security_group_id            = var.cluster_security_group_id
  description                  = "PostgreSQL from ${var.name}"
  ip_protocol                  = "tcp"
  from_port                    = var.database_port
  to_port                      = var.database_port
  referenced_security_group_id = aws_security_group.function.id
}

# --- Secrets Manager endpoint -----------------------------------------------------------

resource "aws_security_group" "secrets_manager_endpoint" {
  count = var.create_secrets_manager_endpoint ? 1 : 0

  name        = "${var.name}-secretsmanager-endpoint"
  description = "Secrets Manager VPC endpoint: HTTPS from the migrations runner"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "endpoint_from_function" {
  count = var.create_secrets_manager_endpoint ? 1 : 0

  security_group_id            = aws_security_group.secrets_manager_endpoint[0].id
  description                  = "HTTPS from ${var.name}"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.function.id
}

resource "aws_vpc_endpoint" "secretsmanager" {
  count = var.create_secrets_manager_endpoint ? 1 : 0

  vpc_id              = var.vpc_id
  service_name        = local.secrets_manager_service
  vpc_endpoint_type   = "Interface"
  subnet_ids          = var.subnet_ids
  security_group_ids  = [aws_security_group.secrets_manager_endpoint[0].id]
  private_dns_enabled = true
}

# An endpoint that already exists (made by the network's stack): admit the function to it.
resource "aws_vpc_security_group_ingress_rule" "existing_endpoint_from_function" {
  count = var.secrets_manager_endpoint_security_group_id == null ? 0 : 1

  security_group_id            = var.secrets_manager_endpoint_security_group_id
  description                  = "HTTPS from ${var.name}"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.function.id
}

# Isolated subnets cannot reach Secrets Manager's public endpoint: without a VPC endpoint
# (with private DNS) the function only ever times out. A check warns at plan and apply
# time instead of failing them (the lookup's own errors become warnings too).
check "secrets_manager_endpoint" {
  data "aws_vpc_endpoint" "secretsmanager" {
    vpc_id       = var.vpc_id
    service_name = local.secrets_manager_service

    # When this module makes the endpoint, look only after it exists.
    depends_on = [aws_vpc_endpoint.secretsmanager]
  }

  assert {
    condition     = data.aws_vpc_endpoint.secretsmanager.state == "available" && data.aws_vpc_endpoint.secretsmanager.private_dns_enabled
    error_message = "VPC ${var.vpc_id} has no available Secrets Manager endpoint with private DNS (${local.secrets_manager_service}): the function cannot read its secret from isolated subnets. Set create_secrets_manager_endpoint = true, or make one."
  }

  assert {
    condition     = var.secrets_manager_endpoint_security_group_id == null || contains(data.aws_vpc_endpoint.secretsmanager.security_group_ids, coalesce(var.secrets_manager_endpoint_security_group_id, "-"))
    error_message = "secrets_manager_endpoint_security_group_id is not a security group of the Secrets Manager endpoint of VPC ${var.vpc_id}: the rule this module adds to it does not admit the function to the endpoint."
  }
}
