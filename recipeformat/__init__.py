"""The Greengrass recipe format as the nucleus reads it: one definition shared by the tooling that writes recipes
(scripts), the local cloud that stores and resolves them (localcloud) and the core that runs them (localgg).
It imports nothing else of this repository."""
