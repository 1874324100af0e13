# The only input the deploy scripts take from Terraform (scripts read them by these names; a test checks them).

output "region" {
  description = "AWS Region of the stack."
  value       = local.region
}

output "account_id" {
  description = "AWS account of the stack."
  value       = local.account_id
}

output "repository_url" {
  description = "ECR repository URL for the subscriber image."
  value       = module.container_registry.repository_url
}

output "repository_arn" {
  description = "ECR repository ARN."
  value       = module.container_registry.repository_arn
}

output "artifact_bucket" {
  description = "Name of the S3 bucket for component artifacts."
  value       = module.artifact_bucket.bucket_name
}

output "artifact_prefix" {
  description = "Key prefix for component artifacts (devices may read only below it)."
  value       = var.artifact_prefix
}

output "component_namespace" {
  description = "Prefix of this stack's component names (com.<name_prefix>): names are account-wide, so stacks stay apart."
  value       = "com.${var.name_prefix}"
}

output "token_exchange_role_arn" {
  description = "ARN of the IAM role core devices assume through the role alias."
  value       = module.token_exchange.role_arn
}

output "token_exchange_role_name" {
  description = "Name of the token exchange role (the installer's --tes-role-name)."
  value       = module.token_exchange.role_name
}

output "role_alias" {
  description = "IoT role alias name (nucleus setting iotRoleAlias)."
  value       = module.token_exchange.role_alias_name
}

output "iot_policy_names" {
  description = "IoT policy of each core device in core_devices, by thing name (each names its thing literally)."
  value       = module.token_exchange.iot_policy_names
}

output "thing_group_name" {
  description = "Thing group that deployments target."
  value       = module.thing_group.name
}

output "thing_group_arn" {
  description = "ARN of the thing group (the deployment target ARN)."
  value       = module.thing_group.arn
}

output "github_plan_role_arn" {
  description = "ARN of the GitHub plan role (the repository variable AWS_PLAN_ROLE_ARN); null without github_plan."
  value       = one(module.github_plan_role[*].role_arn)
}

output "telemetry_topic_prefix" {
  description = "Devices publish their telemetry windows on <prefix>/<thing name>/telemetry (the IoT policy allows it)."
  value       = var.telemetry_topic_prefix
}

output "telemetry_window_seconds" {
  description = "How often each device's subscriber sends a telemetry window (the component's telemetryWindowSeconds)."
  value       = tostring(var.telemetry_window_seconds)
}

output "telemetry_object_prefix" {
  description = "Key prefix of telemetry in the artifact bucket: windows/ (Firehose's, year=/month=/day=/hour=), delivery-errors/, rule-errors/."
  value       = module.telemetry.object_prefix
}

output "iot_data_endpoint" {
  description = "The account's AWS IoT data endpoint (iot:Data-ATS), the nucleus's iotDataEndpoint."
  value       = data.aws_iot_endpoint.data.endpoint_address
}

output "iot_credential_endpoint" {
  description = "The account's AWS IoT credentials provider endpoint, the nucleus's iotCredEndpoint."
  value       = data.aws_iot_endpoint.credentials.endpoint_address
}

output "certificate_pems" {
  description = "The certificate issued from each core device's CSR, by thing name (public: the private key never left the device)."
  value       = module.thing_group.certificate_pems
}
