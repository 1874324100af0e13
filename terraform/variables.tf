variable "name_prefix" {
  description = "Prefix of every resource name (bucket, repository, role, role alias, policy, thing group)."
  type        = string
  default     = "edgeml"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name_prefix))
    error_message = "name_prefix must be 2-20 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS Region of every resource."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like eu-west-1."
  }
}

variable "tags" {
  description = "Tags added to every resource (Project and ManagedBy are always set)."
  type        = map(string)
  default     = {}
}

variable "artifact_prefix" {
  description = "Key prefix in the artifact bucket under which component artifacts are stored and readable by devices."
  type        = string
  default     = "artifacts"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.artifact_prefix))
    error_message = "artifact_prefix must be a key prefix without leading or trailing slashes."
  }
}

variable "keep_images" {
  description = "How many releases' subscriber images the ECR lifecycle policy keeps (a rollback can go back that far)."
  type        = number
  default     = 30

  validation {
    condition     = var.keep_images >= 1 && var.keep_images <= 1000
    error_message = "keep_images must be between 1 and 1000."
  }
}

variable "noncurrent_version_days" {
  description = "Days a replaced artifact object version is kept; null keeps every version (no lifecycle rule)."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_days == null ? true : var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be at least 1, or null."
  }
}

variable "telemetry_topic_prefix" {
  description = "Devices may publish to AWS IoT Core under <prefix>/<thing name>/*."
  type        = string
  default     = "edgeml"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+$", var.telemetry_topic_prefix))
    error_message = "telemetry_topic_prefix must be one topic level without wildcards."
  }
}

variable "telemetry_retention_days" {
  description = "Days the devices' telemetry windows are kept in the artifact bucket (under telemetry/); null keeps them."
  type        = number
  default     = 90

  validation {
    condition     = var.telemetry_retention_days == null ? true : var.telemetry_retention_days >= 1
    error_message = "telemetry_retention_days must be at least 1, or null."
  }
}

variable "telemetry_window_seconds" {
  description = "Each device's subscriber sends one telemetry window this often (10-3600 s)."
  type        = number
  default     = 300

  validation {
    condition     = var.telemetry_window_seconds >= 10 && var.telemetry_window_seconds <= 3600
    error_message = "telemetry_window_seconds must be between 10 and 3600."
  }
}

variable "telemetry_buffer_seconds" {
  description = "Firehose writes the windows it holds at least this often (60-900 s): the delay before make monitor sees them."
  type        = number
  default     = 300

  validation {
    condition     = var.telemetry_buffer_seconds >= 60 && var.telemetry_buffer_seconds <= 900
    error_message = "telemetry_buffer_seconds must be between 60 and 900 (Firehose's bounds)."
  }
}

variable "core_devices" {
  description = "Core device things to create in the thing group, by name; give a PEM `csr` to issue a certificate (no private key ever reaches state)."
  type = map(object({
    csr = optional(string)
  }))
  default = {}
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the artifact bucket and the registry (null: SSE-S3 and AES256); core devices may decrypt with it."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` remove a bucket with objects and a repository with images (for test stacks)."
  type        = bool
  default     = false
}

variable "s3_use_path_style" {
  description = "Path-style S3 addressing, for a local stand-in endpoint such as moto."
  type        = bool
  default     = false
}

variable "github_plan" {
  description = "The role .github/workflows/terraform.yml assumes to plan this stack: repository OWNER/REPO, the GitHub environment its plan job runs in (give it required reviewers), the account's OIDC provider ARN for token.actions.githubusercontent.com, and the S3 state backend if any. null creates no role."
  type = object({
    repository        = string
    environment       = optional(string, "terraform-plan")
    oidc_provider_arn = string
    state = optional(object({
      bucket_arn = string
      key        = string
    }))
  })
  default = null
}

variable "extra_artifact_buckets" {
  description = "Buckets of your own components' artifacts (GDK's <bucket>-<region>-<account> among them) that the core devices' token exchange role may read objects from."
  type        = list(string)
  default     = []
}
