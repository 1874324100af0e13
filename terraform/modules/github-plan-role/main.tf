# The role GitHub Actions assumes to run `terraform plan` of this stack: trusted only for jobs of one repository
# running in one GitHub environment (whose required reviewers gate every run), and allowed to read only what a plan
# refreshes, on this stack's own resources, and hold the state's lock while it plans. Not ReadOnlyAccess: that would read every bucket and secret in the
# account.
#
# The read actions are those the AWS provider's refresh makes for the stack's resource types (recorded from a real
# plan; tests/terraform/test_plan_role.py runs a plan with nothing more).

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # Built from the name, not from the role resource: the policy would otherwise depend on the role it is part of.
  self_arn = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role/${var.name}"

  statements = concat(
    [
      {
        Sid    = "ReadTheArtifactBucket"
        Effect = "Allow"
        Action = [
          "s3:GetBucket*",
          "s3:GetAccelerateConfiguration",
          "s3:GetEncryptionConfiguration",
          "s3:GetLifecycleConfiguration",
          "s3:GetReplicationConfiguration",
          "s3:ListBucket",
        ]
        Resource = [var.readable.bucket_arn]
      },
      {
        Sid      = "ReadTheRegistry"
        Effect   = "Allow"
        Action   = ["ecr:DescribeRepositories", "ecr:GetLifecyclePolicy", "ecr:GetRepositoryPolicy", "ecr:ListTagsForResource"]
        Resource = [var.readable.repository_arn]
      },
      {
        Sid      = "ReadTheRoles"
        Effect   = "Allow"
        Action   = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies"]
        Resource = concat(var.readable.role_arns, [local.self_arn])
      },
      {
        # The data sources that name the account's IoT endpoints (DescribeEndpoint has no resource-level permission).
        Sid      = "FindTheIoTEndpoints"
        Effect   = "Allow"
        Action   = ["iot:DescribeEndpoint"]
        Resource = ["*"]
      },
      {
        # The AWS provider finds a topic rule by listing the account's rules (ListTopicRules has no resource type).
        Sid      = "FindTheTopicRules"
        Effect   = "Allow"
        Action   = ["iot:ListTopicRules"]
        Resource = ["*"]
      },
      {
        Sid    = "ReadTheIoTResources"
        Effect = "Allow"
        Action = [
          "iot:DescribeCertificate",
          "iot:DescribeRoleAlias",
          "iot:DescribeThing",
          "iot:DescribeThingGroup",
          "iot:GetPolicy",
          "iot:GetTopicRule",
          "iot:ListAttachedPolicies",
          "iot:ListTagsForResource",
          "iot:ListThingGroupsForThing",
          "iot:ListThingPrincipals",
        ]
        Resource = var.readable.iot_arns
      },
    ],
    length(var.readable.firehose_arns) == 0 ? [] : [{
      Sid      = "ReadTheDeliveryStreams"
      Effect   = "Allow"
      Action   = ["firehose:DescribeDeliveryStream", "firehose:ListTagsForDeliveryStream"]
      Resource = var.readable.firehose_arns
    }],
    length(var.readable.policy_arns) == 0 ? [] : [{
      Sid      = "ReadThePolicies"
      Effect   = "Allow"
      Action   = ["iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions"]
      Resource = var.readable.policy_arns
    }],
    length(var.readable.kms_key_arns) == 0 ? [] : [{
      Sid      = "DescribeTheKey"
      Effect   = "Allow"
      Action   = ["kms:DescribeKey"]
      Resource = var.readable.kms_key_arns
    }],
    var.state == null ? [] : [
      {
        # Not s3:ListBucket: init and plan need none (tests/terraform/test_plan_role.py), and without it S3
        # answers a missing state 403, not 404, so a plan before the stack's first apply fails rather than
        # showing everything as new. Nothing else in the bucket is the role's to see.
        Sid      = "ReadTheState"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = ["${var.state.bucket_arn}/${var.state.key}"]
      },
      {
        # The S3 backend's lock (use_lockfile): an object beside the state, written only where none exists, read
        # back and deleted when the plan ends. The state itself stays read-only: a plan never writes it.
        Sid      = "LockTheState"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        Resource = ["${var.state.bucket_arn}/${var.state.key}.tflock"]
      },
    ],
  )
}

resource "aws_iam_role" "this" {
  name                 = var.name
  description          = "terraform plan from GitHub Actions: ${var.repository}, environment ${var.environment}."
  max_session_duration = 3600
  tags                 = var.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = var.oidc_provider_arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        # A job that names an environment gets this subject, and only runs once the environment's reviewers
        # approve it: neither a fork's pull request nor another branch's workflow can assume the role.
        StringEquals = {
          "token.actions.githubusercontent.com:aud" = "sts.amazonaws.com"
          "token.actions.githubusercontent.com:sub" = "repo:${var.repository}:environment:${var.environment}"
        }
      }
    }]
  })
}

resource "aws_iam_role_policy" "this" {
  name   = "plan-this-stack"
  role   = aws_iam_role.this.id
  policy = jsonencode({ Version = "2012-10-17", Statement = local.statements })
}
