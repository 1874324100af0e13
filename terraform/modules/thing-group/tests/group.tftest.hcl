mock_provider "aws" {}

variables {
  name             = "edgeml-cores"
  iot_policy_names = { "core-1" = "edgeml-core-core-1", "core-2" = "edgeml-core-core-2" }
  core_devices = {
    "core-1" = {}
    "core-2" = { csr = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n" }
  }
}

run "devices_join_the_group_and_certificates_come_only_from_csrs" {
  command = apply

  assert {
    condition     = toset([for m in aws_iot_thing_group_membership.core : m.thing_group_name]) == toset(["edgeml-cores"])
    error_message = "every core device must be in the thing group"
  }

  assert {
    condition     = keys(aws_iot_certificate.core) == ["core-2"] && aws_iot_policy_attachment.core["core-2"].policy == "edgeml-core-core-2"
    error_message = "a certificate is issued (and its own policy attached) only for a device that gave a CSR"
  }
}

run "a_device_with_a_csr_needs_its_policy" {
  command = plan

  variables {
    iot_policy_names = { "core-1" = "edgeml-core-core-1" }
  }

  expect_failures = [var.iot_policy_names]
}
