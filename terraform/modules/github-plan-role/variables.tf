variable "name" {
  description = "Name of the IAM role."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.name))
    error_message = "name must be a valid IAM role name (64 characters at most)."
  }
}

variable "repository" {
  description = "GitHub repository whose workflows may assume the role, as OWNER/REPO."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.repository))
    error_message = "repository must be OWNER/REPO."
  }
}

variable "environment" {
  description = "GitHub environment the plan job runs in; give it required reviewers in the repository's settings."
  type        = string
  default     = "terraform-plan"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,255}$", var.environment))
    error_message = "environment must be a GitHub environment name without spaces, wildcards or colons."
  }
}

variable "oidc_provider_arn" {
  description = "ARN of the account's IAM OIDC provider for token.actions.githubusercontent.com (one per account, made outside this stack)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/token\\.actions\\.githubusercontent\\.com$", var.oidc_provider_arn))
    error_message = "oidc_provider_arn must be the ARN of the token.actions.githubusercontent.com OIDC provider."
  }
}

variable "readable" {
  description = "ARNs of the stack's resources the plan refreshes: the artifact bucket, the registry, the IAM roles and managed policies, the IoT resources (role alias, policies, thing group, things, certificates, the telemetry rule), the Firehose delivery streams and KMS keys."
  type = object({
    bucket_arn     = string
    repository_arn = string
    role_arns      = list(string)
    policy_arns    = optional(list(string), [])
    iot_arns       = list(string)
    firehose_arns  = optional(list(string), [])
    kms_key_arns   = optional(list(string), [])
  })

  validation {
    condition     = length(var.readable.iot_arns) > 0 && alltrue([for arn in var.readable.iot_arns : can(regex("^arn:aws[a-z-]*:iot:", arn))])
    error_message = "readable.iot_arns must list the stack's IoT resource ARNs."
  }
}

variable "state" {
  description = "S3 backend holding the stack's state (bucket ARN and key), read by the plan; null without one."
  type = object({
    bucket_arn = string
    key        = string
  })
  default = null
}

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}
