"""Terraform outputs as the scripts take them, for tests without a Terraform apply."""

from __future__ import annotations

from scripts import tfoutputs


def stack_outputs(
    region: str, account: str, repository_url: str, bucket: str, group: str, namespace: str = "com.edgeml"
) -> tfoutputs.Outputs:
    """The outputs of an applied stack, for tests that create its bucket and repository themselves."""
    name = group.rsplit("/", 1)[-1]
    return tfoutputs.Outputs(
        region=region,
        account_id=account,
        repository_url=repository_url,
        repository_arn=f"arn:aws:ecr:{region}:{account}:repository/{repository_url.split('/', 1)[-1]}",
        artifact_bucket=bucket,
        artifact_prefix="artifacts",
        component_namespace=namespace,
        token_exchange_role_arn=f"arn:aws:iam::{account}:role/edgeml-token-exchange",
        token_exchange_role_name="edgeml-token-exchange",
        role_alias="edgeml-token-exchange",
        thing_group_name=name,
        thing_group_arn=group,
        iot_data_endpoint=f"abc-ats.iot.{region}.amazonaws.com",
        iot_credential_endpoint=f"abc.credentials.iot.{region}.amazonaws.com",
        telemetry_topic_prefix="edgeml",
        telemetry_object_prefix="telemetry",
        telemetry_window_seconds="300",
        iot_policy_names={},
        certificate_pems={},
    )
