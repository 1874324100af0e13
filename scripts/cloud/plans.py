"""`make plan`: `terraform plan` saved with its text for a reviewer, and what it would do, counted."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scripts.cloud import tfstate
from scripts.cloud.infra import Workspace, init, output, terraform
from scripts.progress import Progress


@dataclass(frozen=True)
class Planned:
    target: str
    changes: bool
    add: int
    change: int
    destroy: int
    plan: Path  # the saved plan's text

    def record(self) -> dict[str, Any]:
        counts = {"add": self.add, "change": self.change, "destroy": self.destroy}
        return {"target": self.target, "changes": self.changes, **counts, "plan": str(self.plan)}


def plan(space: Workspace, progress: Progress) -> Planned:
    """`terraform plan -detailed-exitcode` (0 no changes, 2 changes, anything else an error), saved with its text
    beside it for a reviewer (the workflow uploads the text); on screen, Terraform's summary line only."""
    init(space, progress)
    space.plans.mkdir(parents=True, exist_ok=True)
    saved, text = space.plans / "tfplan", space.plans / "plan.txt"
    quiet = replace(space, log=space.log or space.plans / "terraform.log")
    args = ["plan", "-input=false", "-detailed-exitcode", f"-out={saved}", *space.variables]
    code = terraform(args, quiet, progress, ok=(0, 2))
    tfstate.write(text, output(space, ["show", "-no-color", str(saved)]))
    counts = planned(json.loads(output(space, ["show", "-json", str(saved)])))
    return Planned(space.name, code == 2, counts["add"], counts["change"], counts["destroy"], text)


def planned(shown: dict[str, Any]) -> dict[str, int]:
    """What a saved plan would do, counted as Terraform's own summary counts it (a replacement is an add and a
    destroy), from `terraform show -json`."""
    counts = {"add": 0, "change": 0, "destroy": 0}
    for change in shown.get("resource_changes") or []:
        actions = change.get("change", {}).get("actions", [])
        counts["add"] += "create" in actions
        counts["change"] += actions == ["update"]
        counts["destroy"] += "delete" in actions
    return counts
