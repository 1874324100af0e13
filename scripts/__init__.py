"""Deploy tooling: engine, image, artifacts, component versions, deployments, rollout."""
