output "name" {
  description = "Name of the thing group."
  value       = aws_iot_thing_group.this.name
}

output "arn" {
  description = "ARN of the thing group: the target of deployments."
  value       = aws_iot_thing_group.this.arn
}

output "core_device_names" {
  description = "Names of the core device things created in the group."
  value       = sort(keys(aws_iot_thing.core))
}

output "certificate_arns" {
  description = "ARNs of the certificates issued from CSRs, by thing name (no private keys: those stay on the devices)."
  value       = { for name, cert in aws_iot_certificate.core : name => cert.arn }
}

output "core_device_arns" {
  description = "ARNs of the core device things created in the group, by thing name."
  value       = { for name, thing in aws_iot_thing.core : name => thing.arn }
}

output "certificate_pems" {
  description = "PEM of each certificate issued from a CSR, by thing name (the certificate is public; its key stays on the device)."
  value       = { for name, cert in aws_iot_certificate.core : name => nonsensitive(cert.certificate_pem) }
}
