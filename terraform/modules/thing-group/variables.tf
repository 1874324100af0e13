variable "name" {
  description = "Name of the thing group that deployments target."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9:_-]{1,128}$", var.name))
    error_message = "name must be 1-128 letters, digits, colons, underscores or hyphens."
  }
}

variable "description" {
  description = "Description of the thing group."
  type        = string
  default     = "Greengrass core devices running the edge ML components."
}

variable "core_devices" {
  description = "Core device things to create in the group, by thing name; with a PEM `csr`, a certificate is issued from it and the IoT policy attached."
  type = map(object({
    csr = optional(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for name, d in var.core_devices : can(regex("^[a-zA-Z0-9:_-]{1,128}$", name)) && (d.csr == null || can(regex("BEGIN CERTIFICATE REQUEST", d.csr)))])
    error_message = "core device names must be valid thing names, and each csr a PEM certificate request."
  }
}

variable "iot_policy_names" {
  description = "IoT policy of each core device by thing name, attached to the certificate created from its CSR."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for name, d in var.core_devices : d.csr == null || contains(keys(var.iot_policy_names), name)])
    error_message = "every core device with a csr needs its IoT policy in iot_policy_names."
  }
}

variable "tags" {
  description = "Tags for every resource of the module."
  type        = map(string)
  default     = {}
}
