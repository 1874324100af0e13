mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/edgeml-telemetry" }
  }
  mock_resource "aws_kinesis_firehose_delivery_stream" {
    defaults = { arn = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/edgeml-telemetry" }
  }
}

variables {
  name_prefix  = "edgeml"
  topic_prefix = "edgeml"
  bucket_name  = "edgeml-artifacts"
  bucket_arn   = "arn:aws:s3:::edgeml-artifacts"
}

run "the_rule_selects_each_devices_windows_into_the_stream" {
  command = apply

  assert {
    condition     = aws_iot_topic_rule.this.sql == "SELECT *, topic(2) AS device, timestamp() AS received FROM 'edgeml/+/telemetry'"
    error_message = "the rule takes every device's windows, naming the device from its topic"
  }

  assert {
    condition     = one(aws_iot_topic_rule.this.firehose).separator == "\n" && aws_iot_topic_rule.this.name == "edgeml_telemetry"
    error_message = "one window a line, in a rule named after the prefix"
  }

  assert {
    condition     = one(aws_kinesis_firehose_delivery_stream.this.extended_s3_configuration).compression_format == "GZIP" && startswith(one(aws_kinesis_firehose_delivery_stream.this.extended_s3_configuration).prefix, "telemetry/windows/year=!{timestamp:yyyy}/")
    error_message = "gzip objects under date partitions of the prefix"
  }
}

run "each_role_may_do_its_part_only" {
  command = apply

  assert {
    condition = jsondecode(aws_iam_role_policy.delivery.policy).Statement[0] == {
      Sid      = "WriteUnderTheTelemetryPrefix"
      Effect   = "Allow"
      Action   = ["s3:PutObject", "s3:AbortMultipartUpload"]
      Resource = ["arn:aws:s3:::edgeml-artifacts/telemetry/*"]
    }
    error_message = "Firehose writes under the prefix only"
  }

  assert {
    condition = jsondecode(aws_iam_role_policy.rule.policy).Statement[0].Resource == [
      "arn:aws:firehose:eu-west-1:123456789012:deliverystream/edgeml-telemetry"
    ]
    error_message = "the rule puts into its own stream only"
  }

  assert {
    condition     = jsondecode(aws_iam_role.rule.assume_role_policy).Statement[0].Principal.Service == "iot.amazonaws.com"
    error_message = "only AWS IoT assumes the rule's role"
  }
}

run "firehose_bounds_are_validated" {
  command = plan

  variables {
    buffer_seconds = 30
  }

  expect_failures = [var.buffer_seconds]
}
