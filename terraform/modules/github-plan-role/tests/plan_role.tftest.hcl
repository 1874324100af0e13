mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

variables {
  name              = "edgeml-github-plan"
  repository        = "example-org/edge-ml"
  oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
  readable = {
    bucket_arn     = "arn:aws:s3:::edgeml-artifacts"
    repository_arn = "arn:aws:ecr:eu-west-1:123456789012:repository/edgeml/subscriber"
    role_arns      = ["arn:aws:iam::123456789012:role/edgeml-token-exchange"]
    iot_arns       = ["arn:aws:iot:eu-west-1:123456789012:thinggroup/edgeml-cores"]
  }
}

run "only_the_reviewed_environment_of_one_repository_may_assume_it" {
  command = apply

  assert {
    condition = jsondecode(aws_iam_role.this.assume_role_policy).Statement == [{
      Effect    = "Allow"
      Principal = { Federated = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com" }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "token.actions.githubusercontent.com:aud" = "sts.amazonaws.com"
          "token.actions.githubusercontent.com:sub" = "repo:example-org/edge-ml:environment:terraform-plan"
        }
      }
    }]
    error_message = "the trust policy must name the repository and its reviewed environment exactly"
  }
}

run "it_reads_the_stacks_resources_and_nothing_else" {
  command = apply

  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role_policy.this.policy).Statement : alltrue([for a in s.Action : can(regex("^(s3|ecr|iam|iot|kms):(Get|Describe|List)[A-Za-z*]+$", a))])])
    error_message = "without a state backend, every action must be a read of the stack's services"
  }

  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role_policy.this.policy).Statement : s.Effect == "Allow" && (contains(["FindTheIoTEndpoints", "FindTheTopicRules"], s.Sid) || !contains(s.Resource, "*"))])
    error_message = "every statement but DescribeEndpoint's (it has no resource type) must name the stack's resources"
  }

  assert {
    condition     = [for s in jsondecode(aws_iam_role_policy.this.policy).Statement : s.Sid] == ["ReadTheArtifactBucket", "ReadTheRegistry", "ReadTheRoles", "FindTheIoTEndpoints", "FindTheTopicRules", "ReadTheIoTResources"]
    error_message = "without managed policies, a KMS key or a state backend there are five statements"
  }

  assert {
    condition     = jsondecode(aws_iam_role_policy.this.policy).Statement[2].Resource == ["arn:aws:iam::123456789012:role/edgeml-token-exchange", "arn:aws:iam::123456789012:role/edgeml-github-plan"]
    error_message = "the plan refreshes the token exchange role and this role"
  }
}

run "a_state_backend_and_a_key_are_readable_when_given" {
  command = apply

  variables {
    readable = {
      bucket_arn     = "arn:aws:s3:::edgeml-artifacts"
      repository_arn = "arn:aws:ecr:eu-west-1:123456789012:repository/edgeml/subscriber"
      role_arns      = ["arn:aws:iam::123456789012:role/edgeml-token-exchange"]
      iot_arns       = ["arn:aws:iot:eu-west-1:123456789012:thinggroup/edgeml-cores"]
      kms_key_arns   = ["arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"]
    }
    state = { bucket_arn = "arn:aws:s3:::team-state", key = "edgeml/terraform.tfstate" }
  }

  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.this.policy).Statement : [s.Sid, s.Action, s.Resource] if contains(["DescribeTheKey", "ReadTheState", "LockTheState"], s.Sid)] == [
      ["DescribeTheKey", ["kms:DescribeKey"], ["arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"]],
      ["ReadTheState", ["s3:GetObject"], ["arn:aws:s3:::team-state/edgeml/terraform.tfstate"]],
      ["LockTheState", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], ["arn:aws:s3:::team-state/edgeml/terraform.tfstate.tflock"]],
    ]
    error_message = "the key and the state object must be readable, the lock file writable, and nothing more of the state bucket"
  }

  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role_policy.this.policy).Statement : alltrue([for a in s.Action : can(regex("^(s3|ecr|iam|iot|kms):(Get|Describe|List)[A-Za-z*]+$", a))]) if s.Sid != "LockTheState"])
    error_message = "the lock file is the only thing the plan writes"
  }
}

run "a_wildcard_environment_is_refused" {
  command = plan

  variables {
    environment = "*"
  }

  expect_failures = [var.environment]
}
