"""The stack in the cloud: Terraform (its workspace and its state's backend) and how a device joins the stack.
Imports the local stage (a local workspace starts the local cloud) and the shared modules."""
