"""The local cloud as the tooling drives it: its process (sandbox), its devices, and `make demo`.
Imports the building and publishing stages only."""
