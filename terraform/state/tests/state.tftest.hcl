mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
}

run "the_bucket_and_key_are_named_after_the_stack" {
  command = apply

  variables {
    name_prefix = "team"
  }

  assert {
    condition     = output.bucket == "team-tfstate-123456789012-eu-west-1" && output.key == "team/terraform.tfstate"
    error_message = "the state bucket is <prefix>-tfstate-<account>-<region> and the key <prefix>/terraform.tfstate"
  }

  assert {
    condition     = module.state_bucket.bucket_name == output.bucket
    error_message = "the output names the bucket the module made"
  }
}

run "a_bucket_of_the_teams_own_name" {
  command = plan

  variables {
    bucket_name = "acme-terraform-state"
  }

  assert {
    condition     = output.bucket == "acme-terraform-state"
    error_message = "bucket_name names the bucket"
  }
}
