"""Publishes wine-quality records over Greengrass IPC local pub/sub, in the reference's message format."""
