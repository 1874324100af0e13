"""Recipe templates in, checked recipes out.

Templates are the components' `recipe.yaml` with `{{name}}` placeholders (Greengrass's own `{...}` variables
are left alone), filled on the parsed document, never as text. `check` refuses the mistakes that break a device
or widen its rights, naming each one: the reference project made several of them (see
`../shared/docs/architecture.md`).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from typing import Any

import yaml

from recipeformat.document import STEPS, RecipeError, load_yaml, normalize
from recipeformat.validation import problems as service_problems
from scripts.platforms import this_machine
from scripts.product import COMPONENTS, Component, Components, Made

__all__ = ["RecipeError", "check", "problems", "render", "render_component", "render_release", "to_json"]

TEMPLATES = {component.folder: component.template for component in COMPONENTS}
MAX_RECIPE_BYTES = 16_000  # the greengrassv2 CreateComponentVersion limit for an inline recipe
SOCKET_VAR = "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"
DOCKER_DEPENDENCIES = ("aws.greengrass.DockerApplicationManager", "aws.greengrass.TokenExchangeService")
ARTIFACT_FOLDER = re.compile(r"\{(?:[A-Za-z0-9._-]+:)?artifacts:(?:path|decompressedPath)\}")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


Value = str | int | list[Any] | dict[str, Any]


def render(template: str, values: Mapping[str, Value]) -> dict[str, Any]:
    """The template parsed first, then filled: a string that is one placeholder becomes the value itself (a
    string, or data such as a list of artifacts), and a placeholder inside a string is replaced by text within that
    string. A value is never YAML: whatever it holds, the recipe's keys and structure are the template's."""
    try:
        document = load_yaml(template)
    except yaml.YAMLError as exc:
        raise RecipeError(f"the recipe template is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise RecipeError("a recipe must be a YAML/JSON mapping")
    missing = sorted(placeholders(document) - set(values))
    if missing:
        raise RecipeError(f"no value for template placeholder(s): {', '.join(missing)}")
    filled: dict[str, Any] = _filled(document, values, "")
    return filled


def placeholders(node: Any) -> set[str]:
    """The `{{name}}`s of a parsed template, in its keys and strings."""
    if isinstance(node, dict):
        return set().union(*(placeholders(k) | placeholders(v) for k, v in node.items()))
    if isinstance(node, list):
        return set().union(*(placeholders(v) for v in node))
    return set(_PLACEHOLDER.findall(node)) if isinstance(node, str) else set()


def _filled(node: Any, values: Mapping[str, Value], where: str) -> Any:
    if isinstance(node, dict):
        filled: dict[str, Any] = {}
        for key, value in node.items():
            name = _text(key, values, where) if isinstance(key, str) else key
            if name in filled:
                raise RecipeError(f"{where or 'the recipe'}: two keys are {name!r} once filled")
            filled[name] = _filled(value, values, f"{where}.{name}" if where else str(name))
        return filled
    if isinstance(node, list):
        return [_filled(item, values, f"{where}[{at}]") for at, item in enumerate(node)]
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        return values[whole.group(1)] if whole else _text(node, values, where)
    return node


def _text(text: str, values: Mapping[str, Value], where: str) -> str:
    def one(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        if not isinstance(value, str):
            raise RecipeError(f"{where}: {{{{{match.group(1)}}}}} stands inside text, so its value must be a string")
        return value

    return _PLACEHOLDER.sub(one, text)


def render_component(
    kind: str, values: Mapping[str, Value], architectures: dict[str, dict[str, str]] | None = None
) -> dict[str, Any]:
    """The `kind` template rendered once per architecture (with that architecture's own values and `architecture`
    set): the recipe has each rendering's manifests, in the order given. Without `architectures`, for this build
    machine's architecture only (what an image built here runs on)."""
    if architectures is None:
        architectures = {this_machine().greengrass: {}}
    if not architectures:
        raise RecipeError(f"the {kind} recipe needs at least one architecture")
    text = TEMPLATES[kind].read_text()
    if "architecture" not in placeholders(load_yaml(text)):  # one manifest serves every CPU
        architectures = dict(list(architectures.items())[:1])
    renderings = [render(text, {**values, **own, "architecture": name}) for name, own in architectures.items()]
    recipe = renderings[0]
    recipe["Manifests"] = [manifest for rendering in renderings for manifest in rendering.get("Manifests") or []]
    check(recipe)
    return recipe


def render_release(component: Component, names: Components, made: Made, version: str) -> dict[str, Any]:
    """`component`'s recipe as a release with `made` in it registers it (scripts/publishing/components.py)."""
    values = {**component.values(names, made), "component_name": names.of(component), "component_version": version}
    return render_component(component.folder, values, component.architectures(made))


def to_json(recipe: dict[str, Any]) -> str:
    """The canonical text of a recipe: what is uploaded, sized and compared."""
    return json.dumps(recipe, sort_keys=True, separators=(",", ":"))


def _scripts(manifest: dict[str, Any]) -> dict[str, str]:
    lifecycle = manifest.get("Lifecycle") or {}
    scripts = {}
    for step, body in lifecycle.items():
        if isinstance(body, dict):
            body = body.get("Script")
        if isinstance(body, str) and step in STEPS:
            scripts[step] = body
    return scripts


def _privileged(manifest: dict[str, Any], step: str) -> bool:
    body = (manifest.get("Lifecycle") or {}).get(step)
    return isinstance(body, dict) and str(body.get("RequiresPrivilege", "false")).lower() == "true"


def _calls_docker(script: str) -> bool:
    try:
        return any(words[0] == "docker" or words[:2] == ["exec", "docker"] for words in commands(script))
    except ValueError:
        return False  # reported by the docker checks


# The steps that run the component's own container, which talks to the nucleus: the socket, the token, a name.
CONTAINER_STEPS = ("Run", "Startup")


def commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script, each as its words: split at `;`, `&&`, `||`, `|`, `&` and newlines
    outside quotes, as the shell splits them. ValueError for unbalanced quotes."""
    lexer = shlex.shlex(script.replace("\n", ";"), posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    found: list[list[str]] = [[]]
    for token in lexer:
        if token and set(token) <= set(";&|"):
            found.append([])
        else:
            found[-1].append(token)
    return [words for words in found if words]


def _docker_run_problems(step: str, script: str, images: list[str], artifact_mounts: set[str]) -> list[str]:
    problems = []
    try:
        parsed = commands(script)
    except ValueError as exc:
        return [f"Lifecycle.{step}: cannot parse shell words: {exc}"]
    for words in parsed:
        if words[:1] == ["exec"]:
            words = words[1:]
        if words[:2] != ["docker", "run"]:
            continue
        image_at = next((i for i, word in enumerate(words) if word in images), None)
        if image_at is None:
            problems.append(f"Lifecycle.{step}: `docker run` does not run the image of a docker: artifact")
            continue
        late_flags = [word for word in words[image_at + 1 :] if word.startswith("-")]
        if late_flags:
            problems.append(
                f"Lifecycle.{step}: docker flags after the image go to the container, not to "
                f"Docker: {' '.join(late_flags)}"
            )
        mount = f"${SOCKET_VAR}:${SOCKET_VAR}"
        if step in CONTAINER_STEPS and mount not in words:
            problems.append(f'Lifecycle.{step}: the IPC socket must be mounted as -v "{mount}"')
        for variable in (SOCKET_VAR, "SVCUID") if step in CONTAINER_STEPS else ():
            if variable not in words and not any(w.startswith(f"{variable}=") for w in words):
                problems.append(f"Lifecycle.{step}: `docker run` must pass -e {variable}")
        problems += _docker_run_hazards(step, words[:image_at], {mount, *artifact_mounts})
        if "--rm" not in words:
            problems.append(f"Lifecycle.{step}: `docker run` without --rm leaves a stopped container per restart")
        if "--name" not in words and not any(w.startswith("--name=") for w in words):
            problems.append(f"Lifecycle.{step}: `docker run` needs --name, so that Shutdown can stop the container")
    return problems


def _docker_run_hazards(step: str, flags: list[str], allowed_mounts: set[str]) -> list[str]:
    """Flags that hand the container the device: privileged mode, the host's namespaces, host folders (but the IPC
    socket and, read-only, a component's own artifact folders). The host network only through the component's
    configuration (`--network "$VARIABLE"`), never written in."""
    found = []
    for at, flag in enumerate(flags):
        name, _, inline = flag.partition("=")
        value = inline or (flags[at + 1] if at + 1 < len(flags) else "")
        if name == "--privileged":
            found.append(f"Lifecycle.{step}: `docker run --privileged` gives the container the whole device")
        elif name in ("--pid", "--ipc", "--uts", "--userns", "--cgroupns") and value == "host":
            found.append(f"Lifecycle.{step}: `docker run {name} host` shares the device's {name[2:]} namespace")
        elif name in ("--network", "--net") and value == "host":
            found.append(
                f"Lifecycle.{step}: `--network host` is written into the script; choose it in the component's "
                "configuration (an allow-listed value through Setenv)"
            )
        elif name in ("-v", "--volume", "--mount") and not _allowed_mount(value, allowed_mounts):
            found.append(
                f"Lifecycle.{step}: `docker run {name} {value}` mounts a host path; only the IPC socket and, "
                "read-only, artifact folders may be"
            )
    return found


def _allowed_mount(value: str, allowed: set[str]) -> bool:
    """The IPC socket as given, or `$VARIABLE:<path>:ro` for a variable that holds an artifact folder."""
    if value in allowed:
        return True
    source, _, rest = value.partition(":")
    return source in allowed and rest.endswith(":ro")


def _artifact_folders(manifest: dict[str, Any]) -> set[str]:
    """`$NAME` for each Setenv variable that holds a component's artifact folder (`{[Dependency:]artifacts:path}`)."""
    setenv = (manifest.get("Lifecycle") or {}).get("Setenv") or {}
    return {f"${name}" for name, value in setenv.items() if ARTIFACT_FOLDER.fullmatch(str(value))}


def _access_control_problems(recipe: dict[str, Any]) -> list[str]:
    configuration = (recipe.get("ComponentConfiguration") or {}).get("DefaultConfiguration") or {}
    problems = []
    for service, policies in (configuration.get("accessControl") or {}).items():
        for policy_id, policy in (policies or {}).items():
            where = f"accessControl.{service}.{policy_id}"
            if "*" in (policy.get("operations") or []):
                problems.append(f"{where}: operations must be listed, not '*'")
            resources = policy.get("resources") or []
            if not resources:
                problems.append(f"{where}: no resources: the policy grants nothing")
            if any(str(resource).strip() in ("*", "#") for resource in resources):
                problems.append(f"{where}: resources must name topics, not '*'")
    return problems


def problems(recipe: dict[str, Any]) -> list[str]:
    """Every reason not to publish this recipe; empty when it is fine. Keys in any case, as the nucleus reads them."""
    recipe = normalize(recipe, "the recipe", lambda message: None)
    found = service_problems(recipe)
    size = len(to_json(recipe).encode())
    if size >= MAX_RECIPE_BYTES:
        found.append(f"the recipe is {size} bytes; Greengrass takes at most {MAX_RECIPE_BYTES}")
    found += _access_control_problems(recipe)
    dependencies = recipe.get("ComponentDependencies") or {}
    for index, manifest in enumerate(recipe.get("Manifests") or []):
        artifacts = [str(a.get("URI", "")) for a in manifest.get("Artifacts") or []]
        images = [uri.removeprefix("docker:") for uri in artifacts if uri.startswith("docker:")]
        # The image named through the environment (`"$EDGEML_IMAGE"`), as a value reaches a script.
        setenv = (manifest.get("Lifecycle") or {}).get("Setenv") or {}
        images += [f"${name}" for name, value in setenv.items() if str(value) in images]
        if images:
            found += [
                f"Manifests[{index}] runs a container but does not depend on {name}"
                for name in DOCKER_DEPENDENCIES
                if name not in dependencies
            ]
        for step, script in _scripts(manifest).items():
            if "pip install" in script:
                found.append(
                    f"Lifecycle.{step}: `pip install` on the device is not reproducible; ship the "
                    "dependencies in the artifact or image"
                )
            if "/greengrass/v2/ipc.socket" in script:
                found.append(f"Lifecycle.{step}: the IPC socket path is hard-coded; use ${SOCKET_VAR}")
            if "{configuration:" in script:
                found.append(
                    f"Lifecycle.{step}: a configuration value is pasted into the shell script, where a value "
                    "becomes code; pass it through Setenv and use the quoted variable"
                )
            found += _docker_run_problems(step, script, images, _artifact_folders(manifest))
            if _calls_docker(script) and not _privileged(manifest, step):
                found.append(
                    f"Lifecycle.{step} calls docker as the component's user (ggc_user on a device), who cannot reach "
                    "the Docker engine: set RequiresPrivilege: true on the step"
                )
        runs_container = any("docker run" in script for script in _scripts(manifest).values())
        shutdown = _scripts(manifest).get("Shutdown", "")
        if runs_container and "docker stop" not in shutdown and "docker rm" not in shutdown:
            found.append(f"Manifests[{index}] runs a container but its Shutdown does not stop it (docker stop)")
    return found


def check(recipe: dict[str, Any]) -> None:
    found = problems(recipe)
    if found:
        name = recipe.get("ComponentName", "?")
        raise RecipeError(f"recipe {name} is not publishable:\n  - " + "\n  - ".join(found))
