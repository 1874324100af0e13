# The fleet: a thing group that deployments target, and optionally core device things in it. A device
# certificate is only ever created from a CSR, so no private key reaches Terraform state.

resource "aws_iot_thing_group" "this" {
  name = var.name
  tags = var.tags

  properties {
    description = var.description
  }
}

resource "aws_iot_thing" "core" {
  for_each = var.core_devices
  name     = each.key
}

resource "aws_iot_thing_group_membership" "core" {
  for_each         = var.core_devices
  thing_name       = aws_iot_thing.core[each.key].name
  thing_group_name = aws_iot_thing_group.this.name
}

resource "aws_iot_certificate" "core" {
  for_each = { for name, device in var.core_devices : name => device if device.csr != null }
  csr      = each.value.csr
  active   = true
}

resource "aws_iot_thing_principal_attachment" "core" {
  for_each  = aws_iot_certificate.core
  thing     = aws_iot_thing.core[each.key].name
  principal = each.value.arn
}

resource "aws_iot_policy_attachment" "core" {
  for_each = aws_iot_certificate.core
  policy   = var.iot_policy_names[each.key]
  target   = each.value.arn
}
