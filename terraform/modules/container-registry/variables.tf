variable "name" {
  description = "Name of the ECR repository."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", var.name)) && length(var.name) <= 256
    error_message = "name must be a valid ECR repository name (lower case, digits, . _ - /)."
  }
}

variable "keep_images" {
  description = "How many releases' images (tagged img-) the lifecycle policy keeps; older ones expire."
  type        = number
  default     = 10

  validation {
    condition     = var.keep_images >= 1 && var.keep_images <= 1000
    error_message = "keep_images must be between 1 and 1000."
  }
}

variable "force_delete" {
  description = "Let terraform delete the repository while it still holds images."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the repository; null uses AES256."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "tags" {
  description = "Tags for every resource of the module."
  type        = map(string)
  default     = {}
}
