terraform {
  required_version = ">= 1.10" # the S3 backend's use_lockfile, which the stack's state uses

  # The bootstrap's own state stays on the disk of whoever ran it once per account: it holds one bucket, and the
  # stack's state (the one a team shares) lives in that bucket.
  backend "local" {}

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 6.0"
    }
  }
}
