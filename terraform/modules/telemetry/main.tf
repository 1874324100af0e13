# Telemetry from every device into the account, on the services AWS runs for it: an IoT topic rule on
# <topic_prefix>/+/telemetry hands each window to a Kinesis Data Firehose delivery stream, which batches them into
# gzip objects under a date-partitioned prefix of the artifact bucket (an hour of 10,000 devices is a few objects, not
# 120,000 PUTs). A window the rule cannot deliver goes to the error action, in the same bucket. Two roles, each
# allowed exactly its part: the rule's may only put records into this stream (and its errors under the prefix),
# Firehose's may only write under the prefix.

data "aws_caller_identity" "current" {}

locals {
  account     = data.aws_caller_identity.current.account_id
  windows     = "${var.object_prefix}/windows"
  stream_name = "${var.name_prefix}-telemetry"
  # Firehose's own partitioning by arrival time (its `timestamp` namespace): `make monitor --since` reads only the
  # days it needs, and Athena's partition projection maps the same layout.
  partitions = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
}

resource "aws_iam_role" "delivery" {
  name        = "${var.name_prefix}-telemetry-delivery"
  description = "Assumed by Kinesis Data Firehose to write telemetry windows under ${var.object_prefix}/."
  tags        = var.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "firehose.amazonaws.com" }
      Action    = "sts:AssumeRole"
      # Only this account's streams may act as the role (the confused-deputy guard of the Firehose guide).
      Condition = { StringEquals = { "sts:ExternalId" = local.account } }
    }]
  })
}

resource "aws_iam_role_policy" "delivery" {
  name = "write-telemetry-only"
  role = aws_iam_role.delivery.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "WriteUnderTheTelemetryPrefix"
        Effect   = "Allow"
        Action   = ["s3:PutObject", "s3:AbortMultipartUpload"]
        Resource = ["${var.bucket_arn}/${var.object_prefix}/*"]
      },
      {
        Sid      = "FindTheBucket"
        Effect   = "Allow"
        Action   = ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
        Resource = [var.bucket_arn]
      },
      ], var.kms_key_arn == null ? [] : [{
        Sid      = "EncryptWithTheBucketKey"
        Effect   = "Allow"
        Action   = ["kms:GenerateDataKey", "kms:Decrypt"]
        Resource = [var.kms_key_arn]
    }])
  })
}

resource "aws_kinesis_firehose_delivery_stream" "this" {
  #checkov:skip=CKV_AWS_241:Encrypted with an AWS-owned key by default; set kms_key_arn to use a customer-managed KMS key.
  name        = local.stream_name
  destination = "extended_s3"
  tags        = var.tags

  server_side_encryption {
    enabled  = true
    key_type = var.kms_key_arn == null ? "AWS_OWNED_CMK" : "CUSTOMER_MANAGED_CMK"
    key_arn  = var.kms_key_arn
  }

  extended_s3_configuration {
    role_arn            = aws_iam_role.delivery.arn
    bucket_arn          = var.bucket_arn
    prefix              = "${local.windows}/${local.partitions}"
    error_output_prefix = "${var.object_prefix}/delivery-errors/!{firehose:error-output-type}/${local.partitions}"
    buffering_size      = var.buffer_megabytes
    buffering_interval  = var.buffer_seconds
    compression_format  = "GZIP"
    kms_key_arn         = var.kms_key_arn
  }

  depends_on = [aws_iam_role_policy.delivery]
}

resource "aws_iam_role" "rule" {
  name        = "${var.name_prefix}-telemetry-rule"
  description = "Assumed by the AWS IoT rule that hands telemetry windows to Firehose."
  tags        = var.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "iot.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
    }]
  })
}

resource "aws_iam_role_policy" "rule" {
  name = "deliver-telemetry-only"
  role = aws_iam_role.rule.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "PutIntoTheTelemetryStream"
        Effect   = "Allow"
        Action   = ["firehose:PutRecord", "firehose:PutRecordBatch"]
        Resource = [aws_kinesis_firehose_delivery_stream.this.arn]
      },
      {
        Sid      = "KeepWhatCouldNotBeDelivered"
        Effect   = "Allow"
        Action   = ["s3:PutObject"]
        Resource = ["${var.bucket_arn}/${var.object_prefix}/rule-errors/*"]
      },
      ], var.kms_key_arn == null ? [] : [{
        Sid      = "EncryptWithTheBucketKey"
        Effect   = "Allow"
        Action   = ["kms:GenerateDataKey"]
        Resource = [var.kms_key_arn]
    }])
  })
}

resource "aws_iot_topic_rule" "this" {
  name        = "${replace(var.name_prefix, "-", "_")}_telemetry"
  description = "Telemetry windows of every core device to S3 through Firehose."
  enabled     = true
  sql_version = "2016-03-23"
  # The device is the topic's, not the payload's: each device's IoT policy lets it publish only under its own name.
  sql  = "SELECT *, topic(2) AS device, timestamp() AS received FROM '${var.topic_prefix}/+/telemetry'"
  tags = var.tags

  firehose {
    delivery_stream_name = aws_kinesis_firehose_delivery_stream.this.name
    role_arn             = aws_iam_role.rule.arn
    separator            = "\n"
    batch_mode           = false
  }

  error_action {
    s3 {
      bucket_name = var.bucket_name
      key         = "${var.object_prefix}/rule-errors/$${topic(2)}/$${timestamp()}-$${newuuid()}.json"
      role_arn    = aws_iam_role.rule.arn
    }
  }

  depends_on = [aws_iam_role_policy.rule]
}
