# The bucket that holds the stack's Terraform state (terraform/): made once per account and Region by `make state`,
# before the stack, since a backend cannot create its own bucket. The artifact bucket's module gives it what a state
# bucket needs: versioned (every state written is kept for noncurrent_version_days, to recover from a bad apply),
# encrypted, public access blocked, ACLs disabled, TLS only. The stack's lock is a `.tflock` object beside the state
# (use_lockfile), so there is no DynamoDB table.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

module "state_bucket" {
  source = "../modules/artifact-bucket"

  bucket_name             = coalesce(var.bucket_name, "${var.name_prefix}-tfstate-${data.aws_caller_identity.current.account_id}-${data.aws_region.current.name}")
  force_destroy           = false # a bucket still holding a state is never deleted with it
  kms_key_arn             = var.kms_key_arn
  noncurrent_version_days = var.noncurrent_version_days
  tags                    = var.tags
}
