"""The stack in the cloud: Terraform (its workspace, its plans, its state's backend) and how a device joins the
stack. Imports the shared modules only (the targets, at the top, start a local cloud)."""
