variable "name_prefix" {
  description = "Prefix of the role, role alias and IoT policy names."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,39}$", var.name_prefix))
    error_message = "name_prefix must start with a letter and hold at most 40 letters, digits or hyphens."
  }
}

variable "artifact_bucket_arn" {
  description = "ARN of the artifact bucket; the role may read objects under artifact_prefix only."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$", var.artifact_bucket_arn))
    error_message = "artifact_bucket_arn must be an S3 bucket ARN."
  }
}

variable "artifact_prefix" {
  description = "Key prefix (no slashes at either end) under which component artifacts are stored."
  type        = string
  default     = "artifacts"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$", var.artifact_prefix))
    error_message = "artifact_prefix must be a key prefix without leading or trailing slashes."
  }
}

variable "repository_arn" {
  description = "ARN of the ECR repository the devices pull from."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:ecr:", var.repository_arn))
    error_message = "repository_arn must be an ECR repository ARN."
  }
}

variable "telemetry_topic_prefix" {
  description = "Devices may publish to IoT Core under <prefix>/<thing name>/* (besides $aws/things/<thing name>/*)."
  type        = string
  default     = "edgeml"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+$", var.telemetry_topic_prefix))
    error_message = "telemetry_topic_prefix must be one topic level without wildcards."
  }
}

variable "credential_duration" {
  description = "Lifetime in seconds of the credentials the role alias hands out (900-43200)."
  type        = number
  default     = 3600

  validation {
    condition     = var.credential_duration >= 900 && var.credential_duration <= 43200
    error_message = "credential_duration must be between 900 and 43200 seconds."
  }
}

variable "core_device_names" {
  description = "Thing names of the core devices; each gets its own IoT policy (`<name_prefix>-core-<thing>`) naming it literally."
  type        = set(string)
  default     = []

  validation {
    # Thing names may hold colons; IoT policy names may not, and a policy is named after its thing.
    condition     = alltrue([for name in var.core_device_names : can(regex("^[a-zA-Z0-9_-]{1,80}$", name))])
    error_message = "core device names must be 1-80 letters, digits, underscores or hyphens."
  }
}

variable "kms_key_arns" {
  description = "Customer-managed KMS keys of the artifact bucket and the registry; the role may decrypt with them."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:", arn))])
    error_message = "kms_key_arns must be KMS key ARNs."
  }
}

variable "tags" {
  description = "Tags for every resource of the module."
  type        = map(string)
  default     = {}
}

variable "extra_artifact_buckets" {
  description = "Buckets of your own components' artifacts (GDK's <bucket>-<region>-<account> among them) that core devices may read objects from."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for b in var.extra_artifact_buckets : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", b))])
    error_message = "extra_artifact_buckets must be S3 bucket names (3-63 lower-case letters, digits, dots, hyphens)."
  }
}
