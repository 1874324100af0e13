# The exact rights of a core device, checked statement by statement against a mocked provider.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/edgeml-token-exchange" }
  }
  mock_resource "aws_iam_policy" {
    defaults = { arn = "arn:aws:iam::123456789012:policy/edgeml-token-exchangeAccess" }
  }
  mock_resource "aws_iot_role_alias" {
    defaults = { arn = "arn:aws:iot:eu-west-1:123456789012:rolealias/edgeml-token-exchange" }
  }
}

variables {
  name_prefix         = "edgeml"
  artifact_bucket_arn = "arn:aws:s3:::edgeml-artifacts-123456789012-eu-west-1"
  repository_arn      = "arn:aws:ecr:eu-west-1:123456789012:repository/edgeml/subscriber"
}

run "role_is_trusted_by_the_iot_credentials_provider_only" {
  command = apply

  assert {
    condition = jsondecode(aws_iam_role.this.assume_role_policy) == {
      Version = "2012-10-17"
      Statement = [{
        Effect    = "Allow"
        Principal = { Service = "credentials.iot.amazonaws.com" }
        Action    = "sts:AssumeRole"
      }]
    }
    error_message = "the role must be assumable by credentials.iot.amazonaws.com and nothing else"
  }
}

run "role_policy_is_least_privilege" {
  command = apply

  assert {
    condition = jsondecode(aws_iam_role_policy.this.policy).Statement == [
      {
        Sid      = "ReadComponentArtifacts"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = ["arn:aws:s3:::edgeml-artifacts-123456789012-eu-west-1/artifacts/*"]
      },
      {
        Sid      = "LocateTheArtifactBucket"
        Effect   = "Allow"
        Action   = ["s3:GetBucketLocation"]
        Resource = ["arn:aws:s3:::edgeml-artifacts-123456789012-eu-west-1"]
      },
      {
        Sid      = "PullComponentImages"
        Effect   = "Allow"
        Action   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
        Resource = ["arn:aws:ecr:eu-west-1:123456789012:repository/edgeml/subscriber"]
      },
      {
        Sid      = "LogInToTheRegistry"
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken"]
        Resource = ["*"]
      },
    ]
    error_message = "the token exchange role grants more or other than artifacts and this repository"
  }

  # The logs statement is in the policy under the installer's own name for it (`<role>Access`,
  # DeviceProvisioningHelper.createAndAttachRolePolicy), so the installer finds the name taken and adds nothing.
  assert {
    condition = aws_iam_policy.installer_access.name == "edgeml-token-exchangeAccess" && jsondecode(aws_iam_policy.installer_access.policy).Statement == [
      {
        Sid      = "WriteGreengrassLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
        Resource = ["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/greengrass/*"]
      },
    ]
    error_message = "the installer's policy name holds the Greengrass logs statement and nothing else"
  }

  assert {
    condition     = aws_iam_role_policy_attachment.installer_access.role == aws_iam_role.this.name && aws_iam_role.this.force_detach_policies
    error_message = "the installer's policy is attached, and a destroy detaches whatever else the installer attached"
  }
}

run "role_alias_names_the_role" {
  command = apply

  assert {
    condition     = aws_iot_role_alias.this.role_arn == aws_iam_role.this.arn && aws_iot_role_alias.this.alias == "edgeml-token-exchange"
    error_message = "the role alias must point at the token exchange role"
  }
}

run "a_long_credential_duration_fits_the_roles_sessions" {
  # CreateRoleAlias refuses a credential duration longer than the role's maximum session duration.
  command = apply
  variables {
    credential_duration = 7200
  }

  assert {
    condition     = aws_iam_role.this.max_session_duration == 7200 && aws_iot_role_alias.this.credential_duration == 7200
    error_message = "the role's sessions must last as long as the credentials the alias hands out"
  }
}

run "each_core_device_gets_a_policy_naming_it" {
  command = apply

  variables {
    core_device_names = ["core-1", "core-2"]
  }

  assert {
    condition     = keys(aws_iot_policy.core_device) == ["core-1", "core-2"] && output.iot_policy_names["core-2"] == "edgeml-core-core-2"
    error_message = "each core device must get its own policy, named after it"
  }

  assert {
    condition = jsondecode(aws_iot_policy.core_device["core-1"].policy).Statement == [
      {
        Sid      = "ConnectAsItsOwnThing"
        Effect   = "Allow"
        Action   = ["iot:Connect"]
        Resource = ["arn:aws:iot:eu-west-1:123456789012:client/core-1", "arn:aws:iot:eu-west-1:123456789012:client/core-1#*"]
      },
      {
        Sid    = "PublishAndReceiveOnItsOwnTopics"
        Effect = "Allow"
        Action = ["iot:Publish", "iot:Receive"]
        Resource = [
          "arn:aws:iot:eu-west-1:123456789012:topic/$aws/things/core-1/jobs/*",
          "arn:aws:iot:eu-west-1:123456789012:topic/$aws/things/core-1/shadow/*",
          "arn:aws:iot:eu-west-1:123456789012:topic/$aws/things/core-1/greengrassv2/health/json",
          "arn:aws:iot:eu-west-1:123456789012:topic/$aws/things/core-1/greengrass/health/json",
          "arn:aws:iot:eu-west-1:123456789012:topic/edgeml/core-1/*",
        ]
      },
      {
        Sid    = "SubscribeToItsOwnTopics"
        Effect = "Allow"
        Action = ["iot:Subscribe"]
        Resource = [
          "arn:aws:iot:eu-west-1:123456789012:topicfilter/$aws/things/core-1/jobs/*",
          "arn:aws:iot:eu-west-1:123456789012:topicfilter/$aws/things/core-1/shadow/*",
          "arn:aws:iot:eu-west-1:123456789012:topicfilter/edgeml/core-1/*",
        ]
      },
      {
        Sid      = "AssumeTheTokenExchangeRole"
        Effect   = "Allow"
        Action   = ["iot:AssumeRoleWithCertificate"]
        Resource = ["arn:aws:iot:eu-west-1:123456789012:rolealias/edgeml-token-exchange"]
      },
      {
        Sid    = "GreengrassDataPlane"
        Effect = "Allow"
        Action = [
          "greengrass:GetComponentVersionArtifact",
          "greengrass:ResolveComponentCandidates",
          "greengrass:GetDeploymentConfiguration",
          "greengrass:ListThingGroupsForCoreDevice",
        ]
        Resource = ["*"]
      },
    ]
    error_message = "a core device's policy must name the thing literally (no thing policy variables), its topics and the role alias"
  }

  assert {
    condition     = !strcontains(aws_iot_policy.core_device["core-1"].policy, "iot:Connection.Thing")
    error_message = "thing policy variables are not supported for core devices"
  }
}

run "a_kms_key_may_be_decrypted_with" {
  command = apply

  variables {
    kms_key_arns = ["arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"]
  }

  assert {
    condition = jsondecode(aws_iam_role_policy.this.policy).Statement[4] == {
      Sid      = "DecryptArtifactsAndImages"
      Effect   = "Allow"
      Action   = ["kms:Decrypt"]
      Resource = ["arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"]
    }
    error_message = "with a customer-managed key, the role must be able to decrypt artifacts and image layers"
  }
}

run "a_thing_name_a_policy_cannot_carry_is_refused" {
  command = plan

  variables {
    core_device_names = ["site:core-1"]
  }

  expect_failures = [var.core_device_names]
}

run "a_bad_prefix_is_refused" {
  command = plan

  variables {
    name_prefix = "1-not-a-name!"
  }

  expect_failures = [var.name_prefix]
}
