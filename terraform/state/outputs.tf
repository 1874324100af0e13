output "bucket" {
  description = "The state bucket: the stack's backend `bucket`."
  value       = module.state_bucket.bucket_name
}

output "bucket_arn" {
  description = "ARN of the state bucket (the stack's `github_plan.state.bucket_arn`)."
  value       = module.state_bucket.bucket_arn
}

output "key" {
  description = "Key of the stack's state in the bucket: the stack's backend `key`."
  value       = "${var.name_prefix}/terraform.tfstate"
}

output "region" {
  description = "Region of the state bucket: the stack's backend `region`."
  value       = data.aws_region.current.name
}
