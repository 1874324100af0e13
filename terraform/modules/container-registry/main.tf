# The ECR repository for the subscriber image. Tags are immutable: a deployment pins an image by digest.

resource "aws_ecr_repository" "this" {
  #checkov:skip=CKV_AWS_136:AES256 by default; set kms_key_arn to use a customer-managed KMS key.
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete
  tags                 = var.tags

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = var.kms_key_arn == null ? "AES256" : "KMS"
    kms_key         = var.kms_key_arn
  }
}

# Counts releases, not images: the kit tags each release's image (or, for several platforms, its index) `img-<hash>`
# and pushes the per-platform manifests of an index untagged, reached through it. A rule over "any" image would
# count an index and each of its manifests alike (about three releases kept of ten images) and could expire a
# platform manifest of a release still deployed. Untagged images are never expired here: they are the platform
# halves of kept releases. `make rollback` still checks the release's image resolves before deploying it.
resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last ${var.keep_images} releases' images"
      selection = {
        tagStatus     = "tagged"
        tagPrefixList = ["img-"]
        countType     = "imageCountMoreThan"
        countNumber   = var.keep_images
      }
      action = { type = "expire" }
    }]
  })
}
