"""The resources IAM authorizes ECR's, AWS IoT's and Firehose's actions against, where moto checks `*`: a policy
scoped to this stack's repository, or to the installer's thing, group, policies and role alias (what `make device`
prints), would be refused where AWS allows it.

From the Service Authorization Reference:
- "Actions defined by Amazon Elastic Container Registry": every action on a repository acts on `repository`;
  GetAuthorizationToken has no resource type.
- "Actions defined by AWS IoT": CreateThing acts on a `thing`, CreateThingGroup on a `thinggroup`,
  AddThingToThingGroup on both (each must be allowed), GetPolicy on a `policy`, DescribeRoleAlias on a
  `rolealias`, AttachPolicy on its target (a `cert` or a `thinggroup`), GetTopicRule (and Replace/Delete) on a
  `rule`, ListTagsForResource (and Tag/Untag) on the resource it names. Every other IoT action is checked against
  `*`, as moto does: CreateKeysAndCertificate, DescribeEndpoint, AttachThingPrincipal and CreatePolicy have no
  resource type there.
- "Actions defined by Amazon Kinesis Firehose": every action on a stream acts on `deliverystream`.
"""

from __future__ import annotations

from urllib.parse import unquote

from moto.ecr.responses import ECRResponse
from moto.firehose.responses import FirehoseResponse
from moto.iot.responses import IoTResponse


def of_ecr(request: ECRResponse) -> list[str]:
    """The repository the request acts on, `*` for an action without one."""
    name = request._get_param("repositoryName")
    if not name:
        return ["*"]
    return [f"arn:{request.partition}:ecr:{request.region}:{request.current_account}:repository/{name}"]


def of_firehose(request: FirehoseResponse) -> list[str]:
    """The delivery stream the request acts on ("Actions defined by Amazon Kinesis Firehose": `deliverystream`)."""
    name = request._get_param("DeliveryStreamName")
    if not name:
        return ["*"]
    return [f"arn:{request.partition}:firehose:{request.region}:{request.current_account}:deliverystream/{name}"]


def of_iot(request: IoTResponse) -> list[str]:
    """Every resource the request's action must be allowed on."""
    prefix = f"arn:{request.partition}:iot:{request.region}:{request.current_account}"

    def named(kind: str, parameter: str) -> str:
        return f"{prefix}:{kind}/{request._get_param(parameter)}"

    action = request._get_action()
    if action == "CreateThing":
        return [named("thing", "thingName")]
    if action == "CreateThingGroup":
        return [f"{prefix}:thinggroup/{unquote(request.path.split('/thing-groups/')[-1])}"]
    if action == "AddThingToThingGroup":
        thing = request._get_param("thingArn") or named("thing", "thingName")
        group = request._get_param("thingGroupArn") or named("thinggroup", "thingGroupName")
        return [thing, group]
    if action == "GetPolicy":
        return [named("policy", "policyName")]
    if action == "DescribeRoleAlias":
        return [named("rolealias", "roleAlias")]
    if action in ("GetTopicRule", "ReplaceTopicRule", "DeleteTopicRule"):
        return [named("rule", "ruleName")]
    if action in ("ListTagsForResource", "TagResource", "UntagResource"):
        target = str(request._get_param("resourceArn") or "")
        return [target if target.startswith("arn:") else "*"]
    if action == "AttachPolicy":
        target = str(request._get_param("target") or "")
        return [target if target.startswith("arn:") else "*"]
    return ["*"]
