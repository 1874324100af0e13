provider "aws" {
  region = var.region
  # Against a local stand-in (moto), set AWS_ENDPOINT_URL and this: bucket host names do not resolve there.
  s3_use_path_style = var.s3_use_path_style

  default_tags {
    tags = merge({ Project = var.name_prefix, ManagedBy = "terraform" }, var.tags)
  }
}
