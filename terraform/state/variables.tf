variable "name_prefix" {
  description = "The stack's name_prefix: names the bucket (unless bucket_name does) and the state's key, so two stacks in one account share the bucket and never each other's state."
  type        = string
  default     = "edgeml"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name_prefix))
    error_message = "name_prefix must be 2-20 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS Region of the bucket."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like eu-west-1."
  }
}

variable "bucket_name" {
  description = "Name of the state bucket; null: <name_prefix>-tfstate-<account>-<region>."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name (3-63 lower-case letters, digits, dots, hyphens)."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the state; null: SSE-S3. With a key, whoever plans needs kms:Decrypt and kms:GenerateDataKey on it."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "noncurrent_version_days" {
  description = "Days a replaced state version is kept; null (the default) keeps every one: states are small, and each is a way back from a bad apply."
  type        = number
  default     = null

  validation {
    condition     = var.noncurrent_version_days == null ? true : var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be at least 1, or null."
  }
}

variable "s3_use_path_style" {
  description = "Path-style S3 addressing, for a local endpoint such as moto."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to the bucket (Project and ManagedBy are always set)."
  type        = map(string)
  default     = {}
}
