output "rule_name" {
  description = "Name of the IoT topic rule."
  value       = aws_iot_topic_rule.this.name
}

output "rule_arn" {
  description = "ARN of the IoT topic rule."
  value       = aws_iot_topic_rule.this.arn
}

output "delivery_stream_name" {
  description = "Name of the Firehose delivery stream."
  value       = aws_kinesis_firehose_delivery_stream.this.name
}

output "delivery_stream_arn" {
  description = "ARN of the Firehose delivery stream."
  value       = aws_kinesis_firehose_delivery_stream.this.arn
}

output "object_prefix" {
  description = "Key prefix of everything telemetry writes: windows/ (year=/month=/day=/hour=), delivery-errors/, rule-errors/."
  value       = var.object_prefix
}

output "role_arns" {
  description = "The rule's and the delivery's roles."
  value       = { rule = aws_iam_role.rule.arn, delivery = aws_iam_role.delivery.arn }
}
