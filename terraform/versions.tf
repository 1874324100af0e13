terraform {
  required_version = ">= 1.6"

  # State on local disk, terraform.tfstate beside this file unless `init -backend-config=path=...` says otherwise
  # (the local cloud keeps its state under build/local). Replace it with your team's backend (e.g. "s3").
  backend "local" {}

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 6.0"
    }
  }
}
