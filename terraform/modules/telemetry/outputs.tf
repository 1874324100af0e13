output "rule_name" {
  description = "Name of the IoT topic rule."
  value       = aws_iot_topic_rule.this.name
}

output "delivery_stream_name" {
  description = "Name of the Firehose delivery stream."
  value       = aws_kinesis_firehose_delivery_stream.this.name
}

output "delivery_stream_arn" {
  description = "ARN of the Firehose delivery stream."
  value       = aws_kinesis_firehose_delivery_stream.this.arn
}

output "windows_prefix" {
  description = "Key prefix of the delivered windows (year=/month=/day=/hour= partitions below it)."
  value       = local.windows
}

output "role_arns" {
  description = "The rule's and the delivery's roles."
  value       = { rule = aws_iam_role.rule.arn, delivery = aws_iam_role.delivery.arn }
}
