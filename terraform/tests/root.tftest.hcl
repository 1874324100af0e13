# The root module's wiring and the outputs the deploy scripts read.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::edgeml-artifacts-123456789012-eu-west-1" }
  }
  mock_resource "aws_ecr_repository" {
    defaults = {
      arn            = "arn:aws:ecr:eu-west-1:123456789012:repository/edgeml/subscriber"
      repository_url = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/edgeml/subscriber"
    }
  }
  mock_resource "aws_iam_policy" {
    defaults = { arn = "arn:aws:iam::123456789012:policy/edgeml-token-exchangeAccess" }
  }
  mock_resource "aws_iot_role_alias" {
    defaults = { arn = "arn:aws:iot:eu-west-1:123456789012:rolealias/edgeml-token-exchange" }
  }
  mock_resource "aws_iot_thing_group" {
    defaults = { arn = "arn:aws:iot:eu-west-1:123456789012:thinggroup/edgeml-cores" }
  }
  mock_resource "aws_iot_policy" {
    defaults = { arn = "arn:aws:iot:eu-west-1:123456789012:policy/edgeml-core-core-1" }
  }
  mock_resource "aws_iot_thing" {
    defaults = { arn = "arn:aws:iot:eu-west-1:123456789012:thing/core-1" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/edgeml-mock" }
  }
  mock_resource "aws_iot_topic_rule" {
    defaults = { arn = "arn:aws:iot:eu-west-1:123456789012:rule/edgeml_telemetry" }
  }
  mock_resource "aws_kinesis_firehose_delivery_stream" {
    defaults = { arn = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/edgeml-telemetry" }
  }
}

run "outputs_name_everything_the_scripts_need" {
  command = apply

  assert {
    condition     = output.artifact_bucket == "edgeml-artifacts-123456789012-eu-west-1"
    error_message = "the bucket name is made unique by account and region"
  }

  assert {
    condition     = output.repository_url == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/edgeml/subscriber"
    error_message = "repository_url must be the registry URL of the repository"
  }

  assert {
    condition     = output.role_alias == "edgeml-token-exchange" && output.thing_group_name == "edgeml-cores"
    error_message = "role alias and thing group are named after the prefix"
  }

  assert {
    condition     = output.component_namespace == "com.edgeml"
    error_message = "component names are namespaced by the prefix"
  }

  assert {
    condition     = output.github_plan_role_arn == null
    error_message = "no GitHub plan role unless github_plan asks for one"
  }

  assert {
    condition     = output.region == "eu-west-1" && output.account_id == "123456789012" && output.artifact_prefix == "artifacts"
    error_message = "region, account and artifact prefix come out as given"
  }
}

run "each_core_device_gets_its_policy_and_a_kms_key_reaches_the_role" {
  command = apply

  variables {
    core_devices = { "core-1" = {} }
    kms_key_arn  = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  }

  assert {
    condition     = output.iot_policy_names == { "core-1" = "edgeml-core-core-1" }
    error_message = "every core device must get its own IoT policy"
  }

  assert {
    condition     = strcontains(module.token_exchange.role_policy_json, "kms:Decrypt")
    error_message = "with a customer-managed key, the token exchange role must be able to decrypt"
  }
}

run "the_github_plan_role_reads_this_stacks_resources_only_when_asked_for" {
  command = apply

  variables {
    core_devices = { "core-1" = {} }
    github_plan = {
      repository        = "example-org/edge-ml"
      oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    }
  }

  assert {
    condition     = output.github_plan_role_arn != null && length(module.github_plan_role) == 1
    error_message = "github_plan creates the role"
  }

  assert {
    condition = {
      for s in jsondecode(module.github_plan_role[0].policy_json).Statement : s.Sid => s.Resource
      if contains(["ReadTheArtifactBucket", "ReadTheRegistry"], s.Sid)
      } == {
      ReadTheArtifactBucket = ["arn:aws:s3:::edgeml-artifacts-123456789012-eu-west-1"]
      ReadTheRegistry       = ["arn:aws:ecr:eu-west-1:123456789012:repository/edgeml/subscriber"]
    }
    error_message = "the plan role reads this stack's bucket and repository"
  }

  assert {
    condition     = length(jsondecode(module.github_plan_role[0].policy_json).Statement[5].Resource) == 5
    error_message = "the plan role reads the role alias, the thing group, the telemetry rule, and the device's policy and thing"
  }

  assert {
    condition = [
      for s in jsondecode(module.github_plan_role[0].policy_json).Statement : s.Resource if s.Sid == "ReadTheDeliveryStreams"
    ] == [["arn:aws:firehose:eu-west-1:123456789012:deliverystream/edgeml-telemetry"]]
    error_message = "the plan role reads the telemetry's delivery stream, and no other"
  }
}

# null (the local cloud's choice) is accepted and reaches the module, whose own test shows it makes no rule; 0 is not.
run "every_version_kept_is_a_choice" {
  command = plan

  variables {
    noncurrent_version_days = null
  }
}

run "a_zero_day_expiry_is_refused" {
  command = plan

  variables {
    noncurrent_version_days = 0
  }

  expect_failures = [var.noncurrent_version_days]
}

run "the_prefix_is_validated" {
  command = plan

  variables {
    name_prefix = "Edge_ML"
  }

  expect_failures = [var.name_prefix]
}
