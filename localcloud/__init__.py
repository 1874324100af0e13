"""The local cloud: AWS APIs that moto lacks, served on loopback for the pipeline and the local core."""
