mock_provider "aws" {}

variables {
  name        = "edgeml/subscriber"
  keep_images = 5
}

run "tags_are_immutable_scanned_and_expired" {
  command = apply

  assert {
    condition     = aws_ecr_repository.this.image_tag_mutability == "IMMUTABLE"
    error_message = "tags must be immutable"
  }

  assert {
    condition     = one(aws_ecr_repository.this.image_scanning_configuration).scan_on_push
    error_message = "images must be scanned on push"
  }

  assert {
    condition     = one(aws_ecr_repository.this.encryption_configuration).encryption_type == "AES256"
    error_message = "images must be encrypted at rest"
  }

  assert {
    condition     = jsondecode(aws_ecr_lifecycle_policy.this.policy).rules[0].selection == { tagStatus = "tagged", tagPrefixList = ["img-"], countType = "imageCountMoreThan", countNumber = 5 }
    error_message = "the lifecycle policy must keep the last keep_images releases (tagged img-), never an untagged platform manifest"
  }
}
