"""What reaches the devices: releases (deploy, follow, health, rollback, promote), the deployment's desired state and
rollout presets, following it at a pace the API allows, teardown. Imports the publishing stage only."""
