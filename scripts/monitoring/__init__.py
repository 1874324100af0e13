"""What comes back from the devices: their telemetry windows fetched from the account, merged by an analytical engine,
judged against the model's reference profile (drift, speed, drops) and reported. Imports no other stage."""
