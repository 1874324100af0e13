"""`destroy`: take our components off the devices, then delete everything the pipeline and Terraform made.

Order matters: devices first (a deployment without our components, others' kept), so nothing is left running
that points at deleted versions, images or artifacts; then component versions, S3 objects (every version under
the artifact prefix), ECR images, then what the Greengrass installer made beside Terraform's resources (each
device's certificate, attached to its thing and to Terraform's policy, and the installer's role alias policy),
which would otherwise stop `terraform destroy` with DeleteConflict, and last `terraform destroy`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from scripts import tfoutputs
from scripts.aws import AwsError, calling, error_code
from scripts.fleet import deployments, pacing, rollout
from scripts.progress import Progress
from scripts.publishing import components


def remove_from_devices(
    gg: Any,
    watch: pacing.Watch,
    outputs: tfoutputs.Outputs,
    policies: deployments.Policies,
    timeout: float,
    on_rollout: Callable[[rollout.FleetView], None],
    interval: float,
) -> str | None:
    group, ours = outputs.thing_group_arn, outputs.components.names
    replaced, before = deployments.current(gg, group)
    after = {name: spec for name, spec in before.items() if name not in ours}
    if after == before:
        return None
    deployment_id = deployments.create(gg, group, "edgeml-teardown", after, policies, replaced)
    try:
        rollout.follow(watch, group, deployment_id, set(ours), timeout, on_rollout, interval)
    except rollout.RolloutError as exc:
        if "no things in" not in str(exc):
            raise
    return deployment_id


def delete_component_versions(gg: Any, outputs: tfoutputs.Outputs) -> list[str]:
    """Every version of this stack's components, each component's after those that depend on it (the reverse of the
    order a release registers them); other stacks' namespaces are never listed."""
    deleted = []
    for name in reversed(outputs.components.names):
        arn = components.component_arn(outputs.region, outputs.account_id, name)
        for version in components.versions(gg, arn):
            with calling(f"delete {name} {version['componentVersion']}"):
                gg.delete_component(arn=version["arn"])
            deleted.append(f"{name} {version['componentVersion']}")
    return deleted


def purge_artifacts(s3: Any, bucket: str, prefix: str) -> int:
    count = 0
    with calling(f"purge s3://{bucket}/{prefix}/"):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
            doomed = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if doomed:
                answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
                # DeleteObjects answers 200 and lists what it could not delete, a denied version among them.
                failed = answer.get("Errors") or []
                if failed:
                    raise AwsError(
                        f"purge s3://{bucket}/{prefix}/: {len(failed)} of {len(doomed)} object versions not deleted "
                        f"({failed[0].get('Code')}: {failed[0].get('Message')}); deleting a version needs "
                        "s3:DeleteObjectVersion"
                    )
                count += len(doomed)
    return count


def purge_images(ecr: Any, repository_url: str) -> int:
    name = repository_url.split("/", 1)[1]
    count = 0
    with calling(f"purge the images of {name}"):
        for page in ecr.get_paginator("list_images").paginate(repositoryName=name):
            ids = page.get("imageIds", [])
            if ids:
                ecr.batch_delete_image(repositoryName=name, imageIds=ids)
                count += len(ids)
    return count


@dataclass(frozen=True)
class InstallerMade:
    """What the Greengrass installer created for the stack's core devices and Terraform does not hold: the
    certificates of `--provision true` (the policies it attaches to them are Terraform's)."""

    certificates: dict[str, list[str]] = field(default_factory=dict)  # thing -> certificate ARNs

    def names(self) -> list[str]:
        return [f"certificate {arn.rsplit('/', 1)[-1][:12]}... of {thing}" for thing, arns in
                self.certificates.items() for arn in arns]  # fmt: skip


def installer_made(iot: Any, outputs: tfoutputs.Outputs) -> InstallerMade:
    """Certificates on the stack's things that are not the ones Terraform issued from a CSR."""
    found: dict[str, list[str]] = {}
    with calling("find what the Greengrass installer made"):
        for thing in sorted(outputs.iot_policy_names):
            try:
                principals = iot.list_thing_principals(thingName=thing)["principals"]
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    continue  # not made yet: nothing of the installer's on it
                raise
            terraforms = outputs.certificate_pems.get(thing, "").strip()
            for arn in principals:
                if ":cert/" not in arn:
                    continue
                pem = iot.describe_certificate(certificateId=arn.rsplit("/", 1)[-1])["certificateDescription"]
                if pem["certificatePem"].strip() != terraforms:
                    found.setdefault(thing, []).append(arn)
    return InstallerMade(found)


def remove_installer_made(iot: Any, made: InstallerMade, progress: Progress) -> None:
    """Each certificate detached from its policies and its thing, deactivated and deleted (IoT refuses to delete
    an active or attached one, and Terraform's DeleteThing and DeletePolicy would answer DeleteConflict)."""
    with calling("remove what the Greengrass installer made"):
        for thing, arns in made.certificates.items():
            for arn in arns:
                for policy in iot.list_attached_policies(target=arn)["policies"]:
                    iot.detach_policy(policyName=policy["policyName"], target=arn)
                iot.detach_thing_principal(thingName=thing, principal=arn)
                certificate = arn.rsplit("/", 1)[-1]
                iot.update_certificate(certificateId=certificate, newStatus="INACTIVE")
                iot.delete_certificate(certificateId=certificate)
    if made.names():
        progress(f"removed what the Greengrass installer made: {', '.join(made.names())}")


@dataclass(frozen=True)
class Removed:
    """What a teardown removed from the devices and the cloud."""

    deployment: str | None  # the one that took our components off the devices
    component_versions_deleted: tuple[str, ...]
    artifact_versions_deleted: int
    images_deleted: int

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "component_versions_deleted": list(self.component_versions_deleted)}


def destroy(
    outputs: tfoutputs.Outputs,
    gg: Any,
    watch: pacing.Watch,
    s3: Any,
    ecr: Any,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
    destroy_infrastructure: Callable[[], None],
    timeout: float = 900.0,
    interval: float = 5.0,
) -> Removed:
    # Taking our components off reaches every device at once and never stops half-way.
    removal = deployments.Policies(rollout="all")
    deployment = remove_from_devices(gg, watch, outputs, removal, timeout, on_rollout, interval)
    progress(
        f"devices: {'deployment ' + deployment + ' removed our components' if deployment else 'nothing to remove'}"
    )
    versions = delete_component_versions(gg, outputs)
    progress(f"component versions deleted: {', '.join(versions) or 'none'}")
    objects = purge_artifacts(s3, outputs.artifact_bucket, outputs.artifact_prefix)
    telemetry = purge_artifacts(s3, outputs.artifact_bucket, outputs.telemetry_object_prefix)
    images = purge_images(ecr, outputs.repository_url)
    progress(f"purged {objects} artifact and {telemetry} telemetry object versions, and {images} images")
    destroy_infrastructure()
    return Removed(deployment, tuple(versions), objects, images)
