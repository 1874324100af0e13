"""Component versions and version requirements: semantic versions compared as SemVer orders them, requirements
as npm ranges (`>=1.0.0 <2.0.0`, `^1.2.0`, `~1.2.0`, `=1.0.0`, `*`), the notation of `VersionRequirement` in
recipes and of the nucleus (semver4j in NPM mode)."""

from __future__ import annotations

from semantic_version import NpmSpec, Version

from recipeformat.document import RecipeError


def version(text: str) -> Version:
    try:
        return Version(text)
    except ValueError:
        raise RecipeError(f"{text!r} is not a semantic version (major.minor.patch)") from None


def requirement(text: str) -> NpmSpec:
    try:
        return NpmSpec(text.strip() or "*")
    except ValueError:
        raise RecipeError(f"version requirement {text!r} is not an npm-style range") from None


def satisfies(version_text: str, requirement_text: str) -> bool:
    return version(version_text) in requirement(requirement_text)
