variable "name_prefix" {
  description = "Prefix of the stream, role and rule names (the stack's name_prefix)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "topic_prefix" {
  description = "Devices publish their windows on <topic_prefix>/<thing name>/telemetry."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+$", var.topic_prefix))
    error_message = "topic_prefix must be one topic level without wildcards."
  }
}

variable "bucket_name" {
  description = "The bucket the windows are delivered to (the artifact bucket)."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of that bucket."
  type        = string
}

variable "object_prefix" {
  description = "Key prefix of everything telemetry writes: windows/, delivery-errors/ and rule-errors/ below it."
  type        = string
  default     = "telemetry"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]*$", var.object_prefix))
    error_message = "object_prefix must be one key level of lower-case letters, digits, '_' or '-'."
  }
}

variable "buffer_seconds" {
  description = "Firehose writes an object at least this often (60-900 s), or sooner once buffer_megabytes are held."
  type        = number
  default     = 300

  validation {
    condition     = var.buffer_seconds >= 60 && var.buffer_seconds <= 900
    error_message = "buffer_seconds must be between 60 and 900 (Firehose's bounds)."
  }
}

variable "buffer_megabytes" {
  description = "Firehose writes an object once it holds this many MiB (1-128), or sooner after buffer_seconds."
  type        = number
  default     = 64

  validation {
    condition     = var.buffer_megabytes >= 1 && var.buffer_megabytes <= 128
    error_message = "buffer_megabytes must be between 1 and 128 (Firehose's bounds)."
  }
}

variable "kms_key_arn" {
  description = "The bucket's customer-managed KMS key, if it has one (the delivery encrypts with it)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource of the module."
  type        = map(string)
  default     = {}
}
