variable "bucket_name" {
  description = "Globally unique name of the artifact bucket."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 lower-case letters, digits, dots or hyphens."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy the bucket while it still holds objects (all versions are deleted)."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for SSE-KMS; null uses SSE-S3 (AES256)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "noncurrent_version_days" {
  description = "Days a replaced version is kept before it expires; null keeps every version (and makes no lifecycle configuration)."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_days == null ? true : var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be at least 1, or null."
  }
}

variable "expiring_prefixes" {
  description = "Key prefixes whose objects expire after the given days (e.g. telemetry/ = 90)."
  type        = map(number)
  default     = {}

  validation {
    condition     = alltrue([for prefix, days in var.expiring_prefixes : days >= 1 && endswith(prefix, "/")])
    error_message = "expiring_prefixes: each prefix must end with '/' and each number of days be at least 1."
  }
}

variable "tags" {
  description = "Tags for every resource of the module."
  type        = map(string)
  default     = {}
}
