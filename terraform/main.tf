# The cloud side of the edge ML kit. Component versions and deployments are not here on purpose: they are
# immutable, per release, and the AWS provider has no Greengrass v2 resources; scripts/ owns them and reads
# this module's outputs.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
}

module "artifact_bucket" {
  source = "./modules/artifact-bucket"

  # Account and region make the name unique without hard-coding a global name.
  bucket_name             = "${var.name_prefix}-artifacts-${local.account_id}-${local.region}"
  kms_key_arn             = var.kms_key_arn
  force_destroy           = var.force_destroy
  noncurrent_version_days = var.noncurrent_version_days
  expiring_prefixes       = var.telemetry_retention_days == null ? {} : { "telemetry/" = var.telemetry_retention_days }
}

module "telemetry" {
  source = "./modules/telemetry"

  name_prefix    = var.name_prefix
  topic_prefix   = var.telemetry_topic_prefix
  bucket_name    = module.artifact_bucket.bucket_name
  bucket_arn     = module.artifact_bucket.bucket_arn
  object_prefix  = "telemetry"
  buffer_seconds = var.telemetry_buffer_seconds
  kms_key_arn    = var.kms_key_arn
}

module "container_registry" {
  source = "./modules/container-registry"

  name         = "${var.name_prefix}/subscriber"
  keep_images  = var.keep_images
  kms_key_arn  = var.kms_key_arn
  force_delete = var.force_destroy
}

module "token_exchange" {
  source = "./modules/token-exchange"

  name_prefix            = var.name_prefix
  artifact_bucket_arn    = module.artifact_bucket.bucket_arn
  artifact_prefix        = var.artifact_prefix
  repository_arn         = module.container_registry.repository_arn
  telemetry_topic_prefix = var.telemetry_topic_prefix
  core_device_names      = toset(keys(var.core_devices))
  kms_key_arns           = var.kms_key_arn == null ? [] : [var.kms_key_arn]
  extra_artifact_buckets = var.extra_artifact_buckets
}

# Where a core device connects (its --init-config: iotDataEndpoint, iotCredEndpoint).
data "aws_iot_endpoint" "data" {
  endpoint_type = "iot:Data-ATS"
}

data "aws_iot_endpoint" "credentials" {
  endpoint_type = "iot:CredentialProvider"
}

module "thing_group" {
  source = "./modules/thing-group"

  name             = "${var.name_prefix}-cores"
  core_devices     = var.core_devices
  iot_policy_names = module.token_exchange.iot_policy_names
}

module "github_plan_role" {
  source = "./modules/github-plan-role"
  count  = var.github_plan == null ? 0 : 1

  name              = "${var.name_prefix}-github-plan"
  repository        = var.github_plan.repository
  environment       = var.github_plan.environment
  oidc_provider_arn = var.github_plan.oidc_provider_arn
  state             = var.github_plan.state
  readable = {
    bucket_arn     = module.artifact_bucket.bucket_arn
    repository_arn = module.container_registry.repository_arn
    role_arns      = concat([module.token_exchange.role_arn], values(module.telemetry.role_arns))
    policy_arns    = [module.token_exchange.installer_access_policy_arn]
    firehose_arns  = [module.telemetry.delivery_stream_arn]
    iot_arns = concat(
      [module.token_exchange.role_alias_arn, module.thing_group.arn, module.telemetry.rule_arn],
      values(module.token_exchange.iot_policy_arns),
      values(module.thing_group.core_device_arns),
      values(module.thing_group.certificate_arns),
    )
    kms_key_arns = var.kms_key_arn == null ? [] : [var.kms_key_arn]
  }
}
