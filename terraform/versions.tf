terraform {
  required_version = ">= 1.10" # the S3 backend's use_lockfile

  # State in S3 with a lock file beside it (use_lockfile): the team's shared, locked state. `make state` makes the
  # bucket (terraform/state) and writes state.s3.tfbackend, which `terraform init -backend-config=...` reads; the
  # local cloud gets its own the same way. State on this disk instead: `make state-local` (backend_override.tf).
  backend "s3" {}

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 6.0"
    }
  }
}
