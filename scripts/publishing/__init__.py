"""What is published to the cloud: images in the registry, artifacts in S3, the models and their check,
recipes from their templates, component versions. Imports the building stage only."""
