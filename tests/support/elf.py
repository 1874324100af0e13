"""What CPU a shared library is for: the ELF header's e_machine field (the ELF specification)."""

from __future__ import annotations

MACHINE = {"amd64": 62, "aarch64": 183}  # by the nucleus's architecture names


def machine(header: bytes) -> int:
    assert header[:4] == b"\x7fELF", "not an ELF file"
    return int.from_bytes(header[18:20], "little")
