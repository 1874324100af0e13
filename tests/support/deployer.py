"""The README's "What the deploying identity needs" table as an IAM policy: one statement per row, its resources
with the stack's values put in, so the table a user copies and the policy the account suite runs as cannot drift."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.conftest import REPO

HEADING = "### What the deploying identity needs"


@dataclass(frozen=True)
class Row:
    sid: str
    resources: tuple[str, ...]
    actions: tuple[str, ...]
    checked: bool  # whether the local cloud checks these actions (the table's last column)

    def statement(self, values: dict[str, str]) -> dict[str, Any]:
        def filled(text: str) -> str:
            return re.sub(r"<(\w+)>", lambda m: values[m[1]], text)

        return {
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": list(self.actions),
            "Resource": [filled(resource) for resource in self.resources],
        }


def rows() -> list[Row]:
    text = (REPO / "README.md").read_text()
    section = text[text.index(HEADING) :]
    table = [line for line in section.split("\n\n")[2].splitlines() if line.startswith("| ")][1:]  # below the header
    found = []
    for line in table:
        sid, resources, actions, checked = (cell.strip() for cell in line.strip("|").split("|"))
        found.append(
            Row(
                sid,
                tuple(re.findall(r"`([^`]+)`", resources)),
                tuple(re.findall(r"`([^`]+)`", actions)),
                checked == "yes",
            )
        )
    return found


def policy(values: dict[str, str], without: str | None = None) -> dict[str, Any]:
    """The deployer's policy; `without`: one row's statement left out."""
    return {
        "Version": "2012-10-17",
        "Statement": [row.statement(values) for row in rows() if row.sid != without],
    }
