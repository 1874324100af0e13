output "role_arn" {
  description = "ARN of the plan role: the repository variable AWS_PLAN_ROLE_ARN."
  value       = aws_iam_role.this.arn
}

output "policy_json" {
  description = "The role's inline policy (JSON), for review."
  value       = aws_iam_role_policy.this.policy
}
