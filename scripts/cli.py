"""`python -m scripts <command>`: the deploy tooling's one command line. It parses, calls scripts/flows.py and
prints; it decides nothing.

Exit statuses (scripts/errors.py ExitStatus): 0 done, 1 the work failed (one line says why), 2 the command line was
wrong, 130 interrupted (Ctrl-C). Human output by default; `--json` prints one JSON document on stdout, and
progress then goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker.errors
import requests

from recipeformat.document import RecipeError
from scripts import arguments, flows, pipeline, product, render
from scripts.errors import ExitStatus, ToolError
from scripts.fleet import rollout
from scripts.logs import UnknownLog
from scripts.progress import Progress
from scripts.records import Recorded

Record = dict[str, Any]
# The `--json` document's version: a key removed or changing meaning is a new one; keys only added keep it.
SCHEMA = 1


@dataclass(frozen=True)
class Command:
    summary: str
    run: Callable[[argparse.Namespace, Progress], Recorded]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    # What a person reads at the end (scripts/render.py), from the result's record.
    render: Callable[[Record], list[str]] = render.listing


def _followed(args: argparse.Namespace, action: Callable[[Callable[[rollout.FleetView], None]], Recorded]) -> Recorded:
    """A command that makes a deployment and follows it, shown live to humans."""
    live = render.LiveRollout(enabled=not args.json)
    try:
        return action(live.update)
    finally:
        live.close()


def _deploy(args: argparse.Namespace, progress: Progress) -> Recorded:
    options = pipeline.Options(
        args.model,
        args.challenger,
        args.bump,
        arguments.rollout(args),
        arguments.platforms(args),
        args.profile_data,
    )
    return _followed(args, lambda on_rollout: flows.deploy(arguments.target(args), options, progress, on_rollout))


def _promote(args: argparse.Namespace, progress: Progress) -> Recorded:
    options = arguments.rollout(args)
    return _followed(args, lambda on_rollout: flows.promote(arguments.target(args), options, progress, on_rollout))


def _rollback(args: argparse.Namespace, progress: Progress) -> Recorded:
    options = arguments.rollout(args)
    return _followed(args, lambda on_rollout: flows.rollback(arguments.target(args), options, progress, on_rollout))


COMMANDS: dict[str, Command] = {
    "engine": Command(
        "make sure a Docker engine answers (started as root if needed) and the base image exists",
        lambda args, progress: flows.check_engine(args.cold, progress),
        arguments.add_engine,
    ),
    "image": Command(
        "build the subscriber image (code and runtime; models are mounted from the model component)",
        lambda args, progress: flows.build_image(args.tag, progress, args.platform),
        arguments.add_image,
    ),
    "plan": Command(
        "terraform plan of the cloud side (local cloud by default)",
        lambda args, progress: flows.plan(arguments.target(args), progress),
        arguments.add_target,
    ),
    "state": Command(
        "keep the stack's Terraform state in S3, locked while in use (the bucket made once per account), or on disk",
        lambda args, progress: flows.move_state(arguments.target(args), args.to, progress),
        arguments.add_state,
    ),
    "apply": Command(
        "terraform apply of the cloud side: the local cloud without asking, a real account after asking",
        lambda args, progress: flows.apply(arguments.target(args), progress),
        arguments.add_apply,
    ),
    "deploy": Command(
        "build, publish and deploy both components to the thing group, then follow every device",
        _deploy,
        arguments.add_deploy,
        render.rollout,
    ),
    "destroy": Command(
        "remove the components from the devices, delete versions, artifacts and images, then the infrastructure",
        lambda args, progress: flows.destroy(
            arguments.target(args),
            args.keep_infrastructure,
            args.timeout,
            progress,
            args.force,
            arguments.approval(args.confirm),
        ),
        arguments.add_destroy,
    ),
    "promote": Command(
        "make the deployed challenger model the champion (one model version, one deployment), then follow it",
        _promote,
        arguments.add_redeploy,
        render.rollout,
    ),
    "rollback": Command(
        "deploy the thing group's previous desired state again (after an aborted or failing rollout), then follow it",
        _rollback,
        arguments.add_redeploy,
        render.rollout,
    ),
    "device": Command(
        "how a core device joins the stack: the installer's command and the IAM it needs, or an --init-config file",
        lambda args, progress: flows.join_device(arguments.target(args), args.thing, args.csr, progress),
        arguments.add_device,
        render.joining,
    ),
    "monitor": Command(
        "the group's telemetry: drift against the model's reference, speed, drops; one HTML report (build/monitor)",
        lambda args, progress: flows.monitor(arguments.target(args), args.since, args.thing or "", progress),
        arguments.add_monitor,
        render.monitor,
    ),
    "logs": Command(
        "the components' log lines of every device (or one), with the device: the last SINCE, then as they come",
        lambda args, progress: flows.show_logs(
            arguments.target(args),
            args.thing,
            args.component,
            args.since,
            args.grep,
            args.follow,
            render.log_line_printer(args.json),
            progress,
        ),
        arguments.add_logs,
        render.logs,
    ),
    "status": Command(
        "the per-device view of the thing group's current deployment, and its models",
        lambda args, progress: flows.status(arguments.target(args), progress),
        arguments.add_outputs,
        render.status,
    ),
    "demo": Command(
        "run the publisher and the subscriber container under localgg and print predictions",
        lambda args, progress: flows.run_demo(
            args.model,
            args.messages,
            args.interval,
            args.timeout,
            progress,
            progress if args.json else print,
            product.Components(args.namespace),
        ),
        arguments.add_demo,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts",
        description="Build, publish and deploy the edge ML components to AWS IoT Greengrass.",
        epilog="Exit codes: 0 done, 1 failed (message on stderr), 2 bad command line, 130 interrupted. "
        "Run `python -m scripts COMMAND --help` for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        cmd = sub.add_parser(name, help=command.summary, description=command.summary)
        command.arguments(cmd)
        cmd.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = COMMANDS[args.command]
    out = sys.stderr if args.json else sys.stdout

    def progress(message: str) -> None:
        print(message, file=out, flush=True)

    try:
        result = command.run(args, progress)
    except UnknownLog as exc:  # a thing or component that is not there is a wrong command line
        print(f"error: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    except (ToolError, RecipeError) as exc:  # a recipe's problems are expected failures too
        return _failed(args, f"error: {exc}")
    except (docker.errors.DockerException, requests.RequestException) as exc:  # the engine, mid-operation
        return _failed(args, f"error: the Docker engine failed a request: {exc}")
    except OSError as exc:  # the machine's own refusals (a full disk, a folder it may not write): what and where
        where = f": {exc.filename}" if exc.filename else ""
        return _failed(args, f"error: {exc.strerror or exc}{where}")
    except KeyboardInterrupt:
        print(f"interrupted: {args.command} stopped where it was; running it again carries on", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    record = result.record()
    if args.json:
        print(json.dumps(envelope(args.command, record), indent=2))
    else:
        print("\n".join(command.render(record)))
    return ExitStatus.OK


def _failed(args: argparse.Namespace, message: str) -> int:
    """The error, and on the local target, what is left running and how to stop it (`make destroy` works in any
    shell: the local cloud is driven with its own keys, never the user's AWS settings)."""
    print(message, file=sys.stderr)
    if hasattr(args, "target") and args.command != "destroy":
        with contextlib.suppress(ToolError):  # a target the command line cannot make was the failure itself
            left = arguments.target(args).left_running()
            if left:
                print(left, file=sys.stderr)
    return ExitStatus.FAILED


def envelope(command: str, result: Record) -> Record:
    """The `--json` document: `schema` (SCHEMA) and `kind` (the command's name) first, then the result's own keys,
    as the README's "The --json document" lists them."""
    clash = {"schema", "kind"} & set(result)
    assert not clash, f"{command}'s result has the envelope's keys {clash}"
    return {"schema": SCHEMA, "kind": command, **result}
