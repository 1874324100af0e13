output "role_arn" {
  description = "ARN of the token exchange role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the token exchange role."
  value       = aws_iam_role.this.name
}

output "role_alias_name" {
  description = "Name of the IoT role alias (the nucleus's iotRoleAlias setting)."
  value       = aws_iot_role_alias.this.alias
}

output "role_alias_arn" {
  description = "ARN of the IoT role alias."
  value       = aws_iot_role_alias.this.arn
}

output "iot_policy_names" {
  description = "IoT policy of each core device, by thing name: attach it to that device's certificate."
  value       = { for thing, policy in aws_iot_policy.core_device : thing => policy.name }
}

output "role_policy_json" {
  description = "The role's inline policy (JSON), for review: everything a core device may do with AWS credentials."
  value       = aws_iam_role_policy.this.policy
}

output "iot_policy_arns" {
  description = "ARN of each core device's IoT policy, by thing name."
  value       = { for thing, policy in aws_iot_policy.core_device : thing => policy.arn }
}

output "installer_access_policy_arn" {
  description = "ARN of the managed policy the stack holds under the installer's `<role>Access` name."
  value       = aws_iam_policy.installer_access.arn
}
