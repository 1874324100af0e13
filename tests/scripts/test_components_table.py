"""One table of components (scripts/product.py COMPONENTS): every consumer reads it, none spells a component."""

from __future__ import annotations

from typing import Any

import pytest

from scripts import pipeline, product
from scripts.publishing import recipes
from tests.conftest import REPO


def test_every_component_has_its_folder_and_template() -> None:
    assert [c.folder for c in product.COMPONENTS] == ["model", "subscriber", "publisher"]  # dependencies first
    for component in product.COMPONENTS:
        assert component.template == REPO / "components" / component.folder / "recipe.yaml"
        assert component.template.is_file()
    assert {c.folder: c.template for c in product.COMPONENTS} == recipes.TEMPLATES


def test_names_follow_the_table_in_a_namespace() -> None:
    names = product.Components("com.team")
    assert names.names == tuple(f"com.team.{c.suffix}" for c in product.COMPONENTS)
    assert (names.publisher, names.subscriber, names.model) == (
        "com.team.WineQualityPublisher",
        "com.team.WineQualitySubscriber",
        "com.team.WineQualityModel",
    )


def test_no_other_module_of_the_tooling_spells_a_component() -> None:
    """A component's name lives in the table alone: a module that spelled one would be a second place to edit."""
    spelled = {
        str(path.relative_to(REPO)): [c.suffix for c in product.COMPONENTS if c.suffix in path.read_text()]
        for path in (REPO / "scripts").rglob("*.py")
        if path.name != "product.py"
    }
    assert {path: found for path, found in spelled.items() if found} == {}


def test_the_template_check_renders_each_entry_for_every_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, tuple[str, ...]]] = []
    render = recipes.render_release

    def spied(component: product.Component, *args: Any) -> dict[str, Any]:
        recipe = render(component, *args)
        seen.append((component.folder, tuple(m["Platform"].get("architecture", "*") for m in recipe["Manifests"])))
        return recipe

    monkeypatch.setattr(recipes, "render_release", spied)
    pipeline.check_templates(product.DEFAULT)
    assert [folder for folder, _ in seen] == [c.folder for c in product.COMPONENTS]
    by_folder = dict(seen)
    assert by_folder["model"] == ("*",)  # a model is data: one manifest for every CPU
    assert sorted(by_folder["publisher"]) == sorted(by_folder["subscriber"]) == ["aarch64", "amd64"]
