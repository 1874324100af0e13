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

output "iot_policy_name" {
  description = "Name of the IoT policy to attach to core device certificates."
  value       = aws_iot_policy.core_device.name
}
