# What a core device may do: the IAM role it assumes through the IoT credentials provider (token exchange
# service), the role alias that names it, and one IoT policy per core device for its certificate.
# Policies are jsonencode()d so that tests can read them back exactly.
#
# The IoT policies name each thing literally: the developer guide (device-auth) says thing policy variables are
# not supported for core devices, and the nucleus opens extra MQTT connections as `<thing>#2`, `<thing>#3`, ...,
# for which `iot:Connection.Thing.ThingName` has no value.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  arn_prefix = "arn:${data.aws_partition.current.partition}"
  region     = data.aws_region.current.name
  account    = data.aws_caller_identity.current.account_id
  iot_arn    = "${local.arn_prefix}:iot:${local.region}:${local.account}"
}

resource "aws_iam_role" "this" {
  name        = "${var.name_prefix}-token-exchange"
  description = "Assumed by Greengrass core devices through the AWS IoT credentials provider."
  # The Greengrass installer (--tes-role-name) may attach a managed policy of its own to the role it is given;
  # a destroy then detaches whatever is attached instead of failing on it.
  force_detach_policies = true
  # A role alias may not hand out credentials for longer than its role's sessions last.
  max_session_duration = max(3600, var.credential_duration)
  tags                 = var.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "credentials.iot.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "this" {
  name = "least-privilege"
  role = aws_iam_role.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "ReadComponentArtifacts"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = ["${var.artifact_bucket_arn}/${var.artifact_prefix}/*"]
      },
      {
        # The nucleus's S3 downloader asks where the bucket is before it reads (S3_GET_BUCKET_LOCATION_ACCESS_DENIED
        # otherwise); the developer guide's minimal token exchange policy has it too.
        Sid      = "LocateTheArtifactBucket"
        Effect   = "Allow"
        Action   = ["s3:GetBucketLocation"]
        Resource = [var.artifact_bucket_arn]
      },
      {
        Sid      = "PullComponentImages"
        Effect   = "Allow"
        Action   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
        Resource = [var.repository_arn]
      },
      {
        # GetAuthorizationToken has no resource-level permissions.
        Sid      = "LogInToTheRegistry"
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken"]
        Resource = ["*"]
      },
      ], [for index, bucket in var.extra_artifact_buckets : {
        # A bucket of the user's own components (GDK publishes to <bucket>-<region>-<account>), read the same way.
        Sid      = "ReadExtraArtifacts${index}"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:GetBucketLocation"]
        Resource = ["${local.arn_prefix}:s3:::${bucket}", "${local.arn_prefix}:s3:::${bucket}/*"]
      }], length(var.kms_key_arns) == 0 ? [] : [
      {
        # Objects and image layers encrypted with a customer-managed key are unreadable without it.
        Sid      = "DecryptArtifactsAndImages"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = var.kms_key_arns
      },
    ])
  })
}

# The installer (`--provision true --tes-role-name <this role>`) creates the managed policy `<role>Access` with broad
# defaults (logs and GetBucketLocation on every resource) and attaches it, unless a policy of that name exists
# (DeviceProvisioningHelper.createAndAttachRolePolicy stops at EntityAlreadyExists). So the stack owns that name,
# with this role's own log statement in it: the installer adds nothing, and a destroy leaves nothing behind.
resource "aws_iam_policy" "installer_access" {
  name        = "${aws_iam_role.this.name}Access"
  description = "The Greengrass installer's token exchange policy name, held by the stack so it grants no more."
  tags        = var.tags
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "WriteGreengrassLogs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
      Resource = ["${local.arn_prefix}:logs:${local.region}:${local.account}:log-group:/aws/greengrass/*"]
    }]
  })
}

resource "aws_iam_role_policy_attachment" "installer_access" {
  role       = aws_iam_role.this.name
  policy_arn = aws_iam_policy.installer_access.arn
}

resource "aws_iot_role_alias" "this" {
  alias               = "${var.name_prefix}-token-exchange"
  role_arn            = aws_iam_role.this.arn
  credential_duration = var.credential_duration
  tags                = var.tags
}

# The installer looks for the IoT policy `GreengrassTESCertificatePolicy<alias>` and makes it when it is missing
# (DeviceProvisioningHelper.setupIoTRoleForTes), then attaches it to the new certificate. Held here with the
# installer's own document, so the identity that runs the installer needs no iot:CreatePolicy: whoever holds that
# action can write a policy allowing iot:* and attach it to a certificate of its own.
resource "aws_iot_policy" "installer_tes" {
  name = "GreengrassTESCertificatePolicy${aws_iot_role_alias.this.alias}"
  tags = var.tags
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["iot:AssumeRoleWithCertificate"]
      Resource = [aws_iot_role_alias.this.arn]
    }]
  })
}

resource "aws_iot_policy" "core_device" {
  for_each = var.core_device_names
  name     = "${var.name_prefix}-core-${each.key}"
  tags     = var.tags
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # Its own client id and the nucleus's extra connections, `<thing>#2` and on; not `<thing>*`, which would
        # let it take over the session of a device whose name merely starts with its own.
        Sid      = "ConnectAsItsOwnThing"
        Effect   = "Allow"
        Action   = ["iot:Connect"]
        Resource = ["${local.iot_arn}:client/${each.key}", "${local.iot_arn}:client/${each.key}#*"]
      },
      {
        # Deployments (jobs and the deployment shadow), fleet status, and the components' telemetry.
        Sid    = "PublishAndReceiveOnItsOwnTopics"
        Effect = "Allow"
        Action = ["iot:Publish", "iot:Receive"]
        Resource = [
          "${local.iot_arn}:topic/$aws/things/${each.key}/jobs/*",
          "${local.iot_arn}:topic/$aws/things/${each.key}/shadow/*",
          "${local.iot_arn}:topic/$aws/things/${each.key}/greengrassv2/health/json",
          "${local.iot_arn}:topic/$aws/things/${each.key}/greengrass/health/json",
          "${local.iot_arn}:topic/${var.telemetry_topic_prefix}/${each.key}/*",
        ]
      },
      {
        Sid    = "SubscribeToItsOwnTopics"
        Effect = "Allow"
        Action = ["iot:Subscribe"]
        Resource = [
          "${local.iot_arn}:topicfilter/$aws/things/${each.key}/jobs/*",
          "${local.iot_arn}:topicfilter/$aws/things/${each.key}/shadow/*",
          "${local.iot_arn}:topicfilter/${var.telemetry_topic_prefix}/${each.key}/*",
        ]
      },
      {
        Sid      = "AssumeTheTokenExchangeRole"
        Effect   = "Allow"
        Action   = ["iot:AssumeRoleWithCertificate"]
        Resource = [aws_iot_role_alias.this.arn]
      },
      {
        # The Greengrass data-plane actions a core needs; they have no resource-level permissions.
        # ListThingGroupsForCoreDevice lets the nucleus drop components of groups the device has left.
        Sid    = "GreengrassDataPlane"
        Effect = "Allow"
        Action = [
          "greengrass:GetComponentVersionArtifact",
          "greengrass:ResolveComponentCandidates",
          "greengrass:GetDeploymentConfiguration",
          "greengrass:ListThingGroupsForCoreDevice",
        ]
        Resource = ["*"]
      },
    ]
  })
}
