"""The model component (components/model/recipe.yaml): the champion model whose predictions are the results and
an optional challenger scored in its shadow, each an S3 artifact named by its content. A version's recipe is the
record of both: `promote` and `status` read them back from it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from scripts.errors import ToolError
from scripts.publishing import modelfile
from scripts.publishing.recipes import Value

ROLES = ("champion", "challenger")


class NothingToPromote(ToolError):
    pass


class SameModel(ToolError):
    pass


@dataclass(frozen=True)
class StoredModel:
    uri: str  # s3://bucket/<prefix>/<component>/<sha256>/<file>
    sha256: str
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def file(self) -> str:
        """Its name in the component's artifact folder on the device."""
        return self.uri.rsplit("/", 1)[-1]

    def describe(self) -> str:
        return f"sha256 {self.sha256[:12]}, {modelfile.summary(self.metrics)}"


def component_values(
    name: str, champion: StoredModel, challenger: StoredModel | None, profile: StoredModel | None = None
) -> dict[str, Value]:
    """The model template's values. `profile`: the champion's reference profile (None: telemetry says "no
    reference")."""
    held = {"champion": champion, **({"challenger": challenger} if challenger else {})}
    if challenger is not None and challenger.sha256 == champion.sha256:
        raise SameModel(f"the challenger is the champion itself (sha256 {champion.sha256[:12]}): nothing to compare")
    description = "XGBoost wine-quality models. " + "; ".join(f"{role}: {m.describe()}" for role, m in held.items())
    shipped = [*held.values(), *([profile] if profile else [])]
    return {
        "component_name": name,
        "description": description,
        "model_file": champion.file,
        "challenger_file": challenger.file if challenger else "",
        "profile_file": profile.file if profile else "",
        "models": {role: asdict(m) for role, m in held.items()},
        # The subscriber's container reads them as its own user, not the component's.
        "artifacts": [{"URI": m.uri, "Permission": {"Read": "ALL"}} for m in shipped],
    }


def held_by(recipe: dict[str, Any]) -> dict[str, StoredModel]:
    """The models a registered version holds, by role."""
    configuration = (recipe.get("ComponentConfiguration") or {}).get("DefaultConfiguration") or {}
    return {role: StoredModel(**spec) for role, spec in (configuration.get("models") or {}).items() if role in ROLES}
