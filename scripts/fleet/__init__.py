"""What reaches the devices: the deployment (the full desired state), its rollout presets, following the
rollout at a pace the API allows, health after it, teardown. Imports the publishing stage only."""
