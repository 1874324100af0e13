"""moto as the local AWS: S3, ECR, IAM, IoT and STS on one loopback endpoint, with what this project needs added.

- IoT tagging. moto 5.x has no IoT TagResource/UntagResource/ListTagsForResource, and Terraform's AWS provider
  retries ListTagsForResource for over ten minutes, so `terraform apply` would hang on every IoT resource. The
  three operations are added, and the tags that create calls carry are recorded.
- Policy conditions. moto treats a condition key that is absent from the request as a match, and answers DENIED
  for a statement whose condition fails, so the artifact bucket's "deny unless TLS" statement denies every
  request (moto knows nothing of the transport). In IAM a condition on an absent key is false (bar `Null` and
  `...IfExists`), and a statement whose condition is false does not apply: that is what it does here. moto
  evaluates only StringEquals; Bool (what the TLS statement uses) is added.
- ECR bound to a real registry. Repository URIs name the local registry instead of `*.dkr.ecr.*.amazonaws.com`,
  and ListImages, BatchGetImage, BatchDeleteImage and DeleteRepository act on the images pushed there, so
  `docker push` after an ECR-token login and the ECR image API see the same images, as on AWS.

- IAM enforced per server. moto can check every request's SigV4 signature and evaluate the caller's identity
  policies (IAM users' and assumed roles', inline and attached), but its switch is process-wide and counts
  requests. Here a server started with `enforce_iam` checks every request it serves, and refuses moto's own
  `/moto-api/` (which could switch the checks off or wipe the state). What moto then enforces: the signature
  of every request, and the identity policies for every operation of the JSON/query services (ECR, IAM, IoT,
  STS, ...: the resource is `*` unless moto's response class names one, or localcloud.iam_resources does for ECR
  and the installer's IoT actions) and of S3 (bucket and object ARNs, so `s3:GetBucketLocation` on the bucket and
  `s3:GetObject` on the key are checked as AWS checks them). Not enforced: bucket policies on the identity path,
  and conditions other than StringEquals and Bool.
  `owner()` makes the IAM user whose keys drive everything else.
- Refusals in the service's own protocol. moto answers a bad signature, an unknown key or a denied action with
  query-style XML whatever the service, which only botocore reads: ECR, IoT and KMS (JSON protocols) answer
  `AccessDeniedException` in JSON, IAM and STS `ErrorResponse/Error` XML. Terraform's Go SDK read moto's as
  `UnknownError` or could not decode it at all.
- HeadBucket's IAM action. moto checks it as `s3:HeadBucket`, which IAM does not have; the S3 API reference says
  HeadBucket needs `s3:ListBucket`, so a policy written for AWS was refused (and Terraform then took the bucket for
  deleted). It is checked as `s3:ListBucket` here.
- IoT jobs from the Greengrass side. A greengrassv2 deployment is an IoT job; the local cloud keeps its jobs
  (localcloud.jobs), so IoT's DescribeJob, ListJobs, ListJobExecutionsForJob/ForThing, DescribeJobExecution and
  CancelJob are answered from there (`bind_iot_jobs`), after moto has checked the caller's IAM policies as for any
  IoT operation. A job made with IoT's own CreateJob is moto's: asked for by its id, moto answers; the listings
  hold the deployments' jobs. `iot_members()` reads a thing group's members straight from moto's IoT, as the
  jobs service does from IoT's registry.

It patches moto's response classes in this process; `start()` serves everything on a loopback port.
"""

from __future__ import annotations

import base64
import functools
import json
import threading
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import botocore.exceptions
import botocore.session
from botocore import xform_name
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError, _RESTError
from moto.core.responses import ActionResult, EmptyResult
from moto.ecr import models as ecr_models
from moto.ecr.exceptions import RepositoryNotEmptyException
from moto.ecr.models import ecr_backends
from moto.ecr.responses import ECRResponse
from moto.firehose.responses import FirehoseResponse
from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.iam.models import iam_backends
from moto.iam.policy_conditions import CONDITION_OPERATIONS
from moto.iam.responses import IamResponse
from moto.iot.models import IoTBackend, iot_backends
from moto.iot.responses import IoTResponse
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.s3.responses import ACTION_MAP as S3_ACTIONS
from moto.server import ThreadedMotoServer
from moto.sts.models import sts_backends
from werkzeug.serving import make_server

from localcloud import audit, iam_resources, iam_users
from localcloud.ecr_front import Tokens
from localcloud.identities import Certificate, device_secret, statements_of
from localcloud.net import free_port
from localcloud.registry import USER, RegistryApi
from localcloud.restjson import ServiceError
from localcloud.service_role import trusts
from localcloud.sigv4 import AUTHORIZATION

_TAGS: dict[str, dict[str, str]] = {}
_LOCK = threading.Lock()


def _tag(arn: str, tags: list[dict[str, str]] | None) -> None:
    with _LOCK:
        _TAGS.setdefault(arn, {}).update({t["Key"]: t["Value"] for t in tags or []})


def _list_tags_for_resource(self: IoTResponse) -> ActionResult:
    with _LOCK:
        tags = dict(_TAGS.get(self._get_param("resourceArn"), {}))
    return ActionResult({"tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]})


def _tag_resource(self: IoTResponse) -> EmptyResult:
    _tag(self._get_param("resourceArn"), self._get_param("tags"))
    return EmptyResult()


def _untag_resource(self: IoTResponse) -> EmptyResult:
    with _LOCK:
        tags = _TAGS.get(self._get_param("resourceArn"), {})
        for key in self._get_param("tagKeys") or []:
            tags.pop(key, None)
    return EmptyResult()


def _recording_tags(create: Callable[[IoTResponse], ActionResult], arn_field: str) -> Callable[[IoTResponse], Any]:
    def wrapper(self: IoTResponse) -> ActionResult:
        result = create(self)
        created = result.result
        if isinstance(created, dict) and created.get(arn_field):
            _tag(created[arn_field], self._get_param("tags"))
        return result

    return wrapper


def _create_topic_rule_recording_tags(create: Callable[[IoTResponse], Any]) -> Callable[[IoTResponse], Any]:
    """CreateTopicRule carries its tags in the `x-amz-tagging` header, as a URL query string (the API reference)."""

    def wrapper(self: IoTResponse) -> Any:
        result = create(self)
        tagging = self.headers.get("x-amz-tagging") or ""
        tags = [{"Key": k, "Value": v} for k, v in urllib.parse.parse_qsl(tagging, keep_blank_values=True)]
        backend = self.iot_backend
        _tag(f"arn:aws:iot:{backend.region_name}:{backend.account_id}:rule/{self._get_param('ruleName')}", tags)
        return result

    return wrapper


def install_iot_tagging() -> None:
    """Patch moto's IoT responses (idempotent)."""
    if getattr(IoTResponse, "_edgeml_tagging", False):
        return
    IoTResponse.list_tags_for_resource = _list_tags_for_resource  # type: ignore[attr-defined]
    IoTResponse.tag_resource = _tag_resource  # type: ignore[attr-defined]
    IoTResponse.untag_resource = _untag_resource  # type: ignore[attr-defined]
    for method, arn_field in (
        ("create_thing_group", "thingGroupArn"),
        ("create_role_alias", "roleAliasArn"),
        ("create_policy", "policyArn"),
        ("create_thing_type", "thingTypeArn"),
    ):
        setattr(IoTResponse, method, _recording_tags(getattr(IoTResponse, method), arn_field))
    IoTResponse.create_topic_rule = _create_topic_rule_recording_tags(IoTResponse.create_topic_rule)  # type: ignore[method-assign,assignment]
    IoTResponse._edgeml_tagging = True  # type: ignore[attr-defined]


Invoke = Callable[[str, str, dict[str, Any]], dict[str, Any]]
JOB_OPERATIONS = (
    "DescribeJob",
    "ListJobs",
    "ListJobExecutionsForJob",
    "ListJobExecutionsForThing",
    "DescribeJobExecution",
    "CancelJob",
)


@functools.cache
def _iot_error_status(shape: str) -> int:
    model = botocore.session.get_session().get_service_model("iot")
    try:
        return int(model.shape_for(shape).metadata.get("error", {}).get("httpStatusCode", 400))
    except botocore.exceptions.NoShapeFoundError:
        return 400


def _job_operation(
    operation: str, invoke: Invoke, moto_own: Callable[[IoTResponse], ActionResult]
) -> Callable[[IoTResponse], ActionResult]:
    def answer(self: IoTResponse) -> ActionResult:
        params: dict[str, Any] = {}
        for name in ("jobId", "thingName", "thingGroupName", "status", "nextToken", "comment", "targetSelection"):
            if self._get_param(name) is not None:
                params[name] = self._get_param(name)
        for name in ("maxResults", "executionNumber"):
            if self._get_param(name) is not None:
                params[name] = self._get_int_param(name)
        params["force"] = self._get_bool_param("force", False)
        try:
            return ActionResult(invoke("iot", operation, params))
        except ServiceError as exc:
            if exc.shape == "ResourceNotFoundException":
                return moto_own(self)  # a job made with IoT's own CreateJob, not a deployment's
            error = JsonRESTError(exc.shape, str(exc))
            error.code = _iot_error_status(exc.shape)
            raise error from None

    return answer


_MOTO_JOB_OPERATIONS = {operation: getattr(IoTResponse, xform_name(operation)) for operation in JOB_OPERATIONS}


def bind_iot_jobs(invoke: Invoke) -> None:
    """IoT's job operations answered by `invoke(service, operation, params)` (localcloud.server.Endpoint.invoke)
    for the deployments' jobs, by moto for jobs made with IoT's CreateJob."""
    for operation, moto_own in _MOTO_JOB_OPERATIONS.items():
        setattr(IoTResponse, xform_name(operation), _job_operation(operation, invoke, moto_own))


def iot_members(account: str, region: str) -> Callable[[str], list[str]]:
    """The things a target ARN holds in moto's IoT: a thing group's members, or the thing itself."""

    def members(target: str) -> list[str]:
        backend = iot_backends[account][region]
        if ":thinggroup/" in target:
            group = backend.thing_groups.get(target)
            return [thing.thing_name for thing in list(group.things.values())] if group is not None else []
        thing = backend.things.get(target)
        return [thing.thing_name] if thing is not None else []

    return members


def _bool_equals(expected_value: list[str] | str, actual_value: str) -> bool:
    values = [expected_value] if isinstance(expected_value, str) else expected_value
    return str(actual_value).lower() in [str(value).lower() for value in values]


def _conditions_hold(statement: IAMPolicyStatement, context: dict[str, str]) -> bool:
    for operator, values in (statement._statement.get("Condition") or {}).items():
        if operator != "Null" and not operator.endswith("IfExists") and any(key not in context for key in values):
            return False
    return bool(statement._check_conditions(context))


def install_condition_semantics() -> None:
    """A statement applies only when its conditions hold (idempotent)."""
    if getattr(IAMPolicyStatement, "_edgeml_conditions", False):
        return
    CONDITION_OPERATIONS.setdefault("Bool", _bool_equals)
    original = IAMPolicyStatement.is_action_permitted

    def is_action_permitted(
        self: IAMPolicyStatement,
        action: str,
        resource: str = "*",
        principal: str | None = None,
        incoming_condition_values: dict[str, str] | None = None,
    ) -> PermissionResult:
        if not _conditions_hold(self, incoming_condition_values or {}):
            return PermissionResult.NEUTRAL
        return original(self, action, resource, principal, incoming_condition_values)

    IAMPolicyStatement.is_action_permitted = is_action_permitted  # type: ignore[method-assign]
    IAMPolicyStatement._edgeml_conditions = True  # type: ignore[attr-defined]


_BOUND: list[BoundRegistry] = []  # the registries ECR was bound to, the last one the current


def _registry(self: ECRResponse) -> RegistryApi:
    # Raises RepositoryNotFoundException, as ECR does, before the registry is asked anything.
    self.ecr_backend._get_repository(self._get_param("repositoryName"), self._get_param("registryId"))
    return _BOUND[-1].api


def _list_images(self: ECRResponse) -> ActionResult:
    images = _registry(self).images(self._get_param("repositoryName"))
    return ActionResult({"imageIds": [{"imageDigest": digest, "imageTag": tag} for digest, tag in images]})


def _batch_delete_image(self: ECRResponse) -> ActionResult:
    registry, name = _registry(self), self._get_param("repositoryName")
    deleted, failures = [], []
    for image_id in self._get_param("imageIds") or []:
        digest = image_id.get("imageDigest") or registry.digest(name, image_id.get("imageTag", ""))
        if digest and registry.delete(name, digest):
            deleted.append(
                {"imageDigest": digest, **({"imageTag": image_id["imageTag"]} if "imageTag" in image_id else {})}
            )
        else:
            failures.append(
                {"imageId": image_id, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"}
            )
    return ActionResult({"imageIds": deleted, "failures": failures})


def _batch_get_image(self: ECRResponse) -> ActionResult:
    registry, name = _registry(self), self._get_param("repositoryName")
    images, failures = [], []
    for image_id in self._get_param("imageIds") or []:
        found = registry.manifest(name, image_id.get("imageDigest") or image_id.get("imageTag", ""))
        if found is None:
            failures.append(
                {"imageId": image_id, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"}
            )
            continue
        digest, media_type, manifest = found
        images.append(
            {
                "registryId": self.current_account,
                "repositoryName": name,
                "imageId": {**image_id, "imageDigest": digest},
                "imageManifest": manifest,
                "imageManifestMediaType": media_type,
            }
        )
    return ActionResult({"images": images, "failures": failures})


def _deleting_images(delete: Callable[[ECRResponse], ActionResult]) -> Callable[[ECRResponse], ActionResult]:
    def wrapper(self: ECRResponse) -> ActionResult:
        registry, name = _registry(self), self._get_param("repositoryName")
        images = registry.images(name)
        if images and not self._get_param("force"):
            raise RepositoryNotEmptyException(name, self._get_param("registryId") or self.current_account)
        for digest in {digest for digest, _ in images}:
            registry.delete(name, digest)
        return delete(self)

    return wrapper


def _authorization_token(self: ECRResponse) -> ActionResult:
    """GetAuthorizationToken with a front (localcloud.ecr_front): a password of the front's bound to the caller, who
    then pushes and pulls with its own permissions (moto's own hands out a fixed `<account>-auth-token`)."""
    bound = _BOUND[-1]
    assert bound.tokens is not None  # called only then (_install_ecr_binding)
    password, expires = bound.tokens.issue(getattr(_REQUEST, "signer", None))
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    return ActionResult(
        {
            "authorizationData": [
                {
                    "authorizationToken": token,
                    "expiresAt": datetime.fromtimestamp(expires, UTC),
                    "proxyEndpoint": f"http://{bound.public}",
                }
                for _ in self._get_param("registryIds") or [self.current_account]
            ]
        }
    )


@dataclass(frozen=True)
class BoundRegistry:
    api: RegistryApi  # the registry itself, as the stack reaches it
    public: str  # host:port in repository URIs: the front, or the registry when there is none
    tokens: Tokens | None  # the front's; None: moto's own fixed token


def bind_ecr_to_registry(
    registry: RegistryApi, public: str | None = None, tokens: Tokens | None = None
) -> Callable[[], None]:
    """Point moto's ECR at `registry` until the returned callable unbinds it (moto's backends are process-wide: a
    test's stack binds inside the session's registry, and gives it back). With a front (`public`, its host, and its
    `tokens`), repository URIs name the front and GetAuthorizationToken issues its caller a token of the front's."""
    _install_ecr_binding()
    bound = BoundRegistry(registry, public or registry.host, tokens)
    _BOUND.append(bound)
    return lambda: _BOUND.remove(bound)


def _install_ecr_binding() -> None:
    """moto's ECR, its image operations acting on the registry bound now; moto's own while none is."""
    if getattr(ECRResponse, "_edgeml_bound", False):
        return
    original_init = ecr_models.Repository.__init__

    def init(self: ecr_models.Repository, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if _BOUND:
            self.uri = f"{_BOUND[-1].public}/{self.name}"

    ecr_models.Repository.__init__ = init  # type: ignore[method-assign]
    own_token = ECRResponse.get_authorization_token
    ECRResponse.get_authorization_token = lambda self: (  # type: ignore[method-assign]
        _authorization_token(self) if _BOUND and _BOUND[-1].tokens is not None else own_token(self)
    )
    for name, bound in (
        ("list_images", _list_images),
        ("batch_delete_image", _batch_delete_image),
        ("batch_get_image", _batch_get_image),
        ("delete_repository", _deleting_images(ECRResponse.delete_repository)),
    ):
        setattr(ECRResponse, name, _while_bound(bound, getattr(ECRResponse, name)))
    ECRResponse._edgeml_bound = True  # type: ignore[attr-defined]


def _while_bound(
    bound: Callable[[ECRResponse], ActionResult], own: Callable[[ECRResponse], Any]
) -> Callable[[ECRResponse], Any]:
    return lambda self: bound(self) if _BOUND else own(self)


def repository_arns(account: str, region: str) -> Callable[[str], str | None]:
    """The ARN of a repository of the account's ECR in `region`, None when it was never created."""

    def arn(name: str) -> str | None:
        found = ecr_backends[account][region].repositories.get(name)
        return None if found is None else str(found.arn)

    return arn


_REQUEST = threading.local()  # whether the request this thread serves came to an enforcing server


def _authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
    """moto's own check (signature, then the caller's identity policies), for requests to enforcing servers."""
    if not getattr(_REQUEST, "enforced", False):
        return
    query = urlparse(self.uri).query
    try:
        request = iam_request_cls(
            account_id=self.current_account,
            method=self.method,
            path=self.raw_path + (f"?{query}" if query else ""),
            # moto hashes `body or data` as the payload, and without a body or a form its `data` holds the query or
            # even the headers: the payload would not be the empty one the client signed.
            data=self.data if self.raw_body or self.form_data else {},
            body=self.raw_body,
            headers=self.headers,
            action=_action(self, query),
        )
        request.check_signature()
        for each in _resources(self, resource):
            request.check_action_permitted(each)
        audit.allowed(request._access_key.arn, request._action)
        _REQUEST.signer = iam_users.Signer(request._access_key)
    except _RESTError as refused:
        raise _in_the_services_protocol(refused, request_service(self.headers)) from None


def _action(request: Any, query: str) -> str:
    """The IAM action, where moto names another: a multi-object delete of object versions (DeleteObjects with a
    VersionId) needs s3:DeleteObjectVersion, not s3:DeleteObject (S3 API reference, DeleteObjects: "Permissions")."""
    action = str(request._get_action())
    versioned = "delete" in parse_qs(query, keep_blank_values=True) and b"<VersionId>" in (request.raw_body or b"")
    if action == "DeleteObject" and request.method == "POST" and versioned:
        return "DeleteObjectVersion"
    return action


def _resources(request: Any, moto_s: str) -> list[str]:
    if isinstance(request, IoTResponse):
        return iam_resources.of_iot(request)
    if isinstance(request, ECRResponse):
        return iam_resources.of_ecr(request)
    if isinstance(request, FirehoseResponse):
        return iam_resources.of_firehose(request)
    return [moto_s]


# The codes JSON-protocol services give the refusals moto names as the query services do.
_JSON_CODES = {
    "AccessDenied": "AccessDeniedException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
    "InvalidClientTokenId": "UnrecognizedClientException",
}


class _QueryError(_RESTError):
    """A query-protocol error as IAM and STS send it: `ErrorResponse/Error` (moto wraps it in an `Errors` list, which
    the AWS SDKs other than botocore cannot read)."""

    def __init__(self, code: str, message: str, namespace: str) -> None:
        super().__init__(code, message)
        root = ET.Element("ErrorResponse", xmlns=namespace)
        error = ET.SubElement(root, "Error")
        for tag, text in (("Type", "Sender"), ("Code", code), ("Message", message)):
            ET.SubElement(error, tag).text = text
        ET.SubElement(root, "RequestId").text = str(uuid.uuid4())
        self.description = ET.tostring(root, encoding="unicode", xml_declaration=True)


def request_service(headers: Any) -> str:
    """The service a SigV4 request is signed for (its credential scope), `""` if it is not signed that way."""
    signed = AUTHORIZATION.match(str(headers.get("Authorization", "")))
    return signed["service"] if signed else ""


@functools.cache
def _protocol(service: str) -> tuple[str, str]:
    try:
        metadata = botocore.session.get_session().get_service_model(service).metadata
    except botocore.exceptions.UnknownServiceError:
        return "", ""
    return metadata["protocol"], metadata.get("xmlNamespace", "")


def _in_the_services_protocol(refused: _RESTError, service: str) -> _RESTError:
    """moto's refusal (a query-style XML body whatever the service) as the service itself would send it."""
    protocol, namespace = _protocol(service)
    if protocol in ("json", "rest-json"):
        error: _RESTError = JsonRESTError(_JSON_CODES.get(refused.error_type, refused.error_type), refused.message)
    elif protocol == "query":
        error = _QueryError(refused.error_type, refused.message, namespace)
    else:
        return refused  # S3 (rest-xml) raises its own errors, already in its format
    error.code = refused.code
    return error


def _iam_resource(self: IamResponse) -> str:
    """The resource IAM authorizes a request against: the role for role actions (moto's own rule), and the managed
    policy for the policy actions (CreatePolicy by its name and path, GetPolicy, GetPolicyVersion, ... by its ARN),
    which moto checks against `*` only (Service Authorization Reference, IAM: their resource type is `policy`)."""
    if "RoleName" not in self.data and self._get_action() == "CreatePolicy" and "PolicyName" in self.data:
        path = self.data.get("Path", ["/"])[0]
        return f"arn:aws:iam::{self.current_account}:policy{path}{self.data['PolicyName'][0]}"
    if "RoleName" in self.data or "PolicyArn" not in self.data:
        return _ROLE_RESOURCE(self)
    return str(self.data["PolicyArn"][0])


_ROLE_RESOURCE = IamResponse._determine_resource


def install_iam_enforcement() -> None:
    """Requests to servers started with `enforce_iam` are checked, HeadBucket as IAM names it, IAM's policy
    actions against their policy (idempotent)."""
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _authorize  # type: ignore[method-assign]
    S3_ACTIONS["BUCKET"]["HEAD"]["DEFAULT"] = "ListBucket"
    IamResponse._determine_resource = _iam_resource  # type: ignore[method-assign]


class _Guard:
    """WSGI middleware: marks the request as enforced or not, and keeps `/moto-api/` from callers of an
    enforcing server."""

    def __init__(self, app: Any, enforce: bool) -> None:
        self.app, self.enforce = app, enforce

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.enforce and environ.get("PATH_INFO", "").startswith("/moto-api"):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"moto's control API is off on this endpoint\n"]
        _REQUEST.enforced, _REQUEST.signer = self.enforce, None
        try:
            return list(self.app(environ, start_response))  # the checks run while the answer is made
        finally:
            _REQUEST.enforced, _REQUEST.signer = False, None


class _Server(ThreadedMotoServer):
    def __init__(self, port: int, enforce_iam: bool) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self.enforce_iam = enforce_iam

    def _server_entry(self) -> None:
        app = _Guard(DomainDispatcherApplication(create_backend_app), self.enforce_iam)
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


_DEVICE_SECRETS: dict[str, str] = {}  # certificate id -> the digest of the key IoT generated with it


def install_device_keys() -> None:
    """CreateKeysAndCertificate notes the digest of each key it hands out (localcloud.identities), idempotent."""
    if getattr(IoTBackend, "_edgeml_device_keys", False):
        return
    original = IoTBackend.create_keys_and_certificate

    def create_keys_and_certificate(self: IoTBackend, set_as_active: bool) -> tuple[Any, dict[str, str]]:
        certificate, key_pair = original(self, set_as_active)
        _DEVICE_SECRETS[certificate.certificate_id] = device_secret(key_pair["PrivateKey"])
        return certificate, key_pair

    IoTBackend.create_keys_and_certificate = create_keys_and_certificate  # type: ignore[method-assign]
    IoTBackend._edgeml_device_keys = True  # type: ignore[attr-defined]


def install_stable_endpoints() -> None:
    """DescribeEndpoint answers one address per account, Region and endpoint type, as AWS IoT does (a device's
    config and Terraform's outputs agree); moto draws a new random one on every call. Idempotent."""
    if getattr(IoTBackend, "_edgeml_stable_endpoints", False):
        return
    original = IoTBackend.describe_endpoint

    def describe_endpoint(self: IoTBackend, endpoint_type: str) -> Any:
        issued: dict[str, Any] = self.__dict__.setdefault("_edgeml_endpoints", {})
        if endpoint_type not in issued:
            issued[endpoint_type] = original(self, endpoint_type)
        self.endpoint = issued[endpoint_type]
        return self.endpoint

    IoTBackend.describe_endpoint = describe_endpoint  # type: ignore[method-assign]
    IoTBackend._edgeml_stable_endpoints = True  # type: ignore[attr-defined]


def certificates(account: str, region: str) -> Callable[[str], Certificate | None]:
    """An ACTIVE certificate of moto's IoT with a key the local cloud made, by id: what signs for it, the things it
    is attached to and the policies attached to it, read at each request (a detach takes effect at once)."""

    def lookup(certificate_id: str) -> Certificate | None:
        backend = iot_backends[account][region]
        found = backend.certificates.get(certificate_id)
        secret = _DEVICE_SECRETS.get(certificate_id)
        if found is None or secret is None or found.status != "ACTIVE":
            return None
        policies = [p.document for p in backend.list_attached_policies(found.arn)]
        return Certificate(
            certificate_id,
            found.arn,
            secret,
            tuple(backend.list_principal_things(found.arn)),
            statements_of(p if isinstance(p, str) else json.dumps(p) for p in policies),
        )

    return lookup


def device_certificates(account: str, region: str) -> list[Certificate]:
    """Every ACTIVE certificate with a key the local cloud made, as `certificates` reads each."""
    lookup = certificates(account, region)
    return [found for certificate_id in list(_DEVICE_SECRETS) if (found := lookup(certificate_id)) is not None]


def owner(account: str, name: str = "localcloud-owner") -> tuple[str, str]:
    """An IAM user that may do everything, made in moto's backend directly (an enforcing server would refuse the
    first call that could make it); its access key id and secret."""
    backend = iam_backends[account]["aws"]
    backend.create_user(region_name="us-east-1", user_name=name)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    backend.put_user_policy(name, "everything", json.dumps(policy))
    key = backend.create_access_key(name)
    return key.access_key_id, key.secret_access_key


class NotTrusted(PermissionError):
    """The role's trust policy does not name the service that tried to assume it."""


def service_assumer(account: str, service: str) -> Callable[[str, str, int], dict[str, Any]]:
    """AssumeRole as an AWS service does it for its callers (the IoT credentials provider, for a role alias): the
    service is the principal, so what counts is the role's trust policy naming it, not any caller's policies.
    The credentials are STS's, which an enforcing server then checks against the role's policies."""

    def assume(role_arn: str, session: str, duration: int) -> dict[str, Any]:
        role = iam_backends[account]["aws"].get_role_by_arn(role_arn)
        trust = json.loads(role.assume_role_policy_document)
        if not any(trusts(statement, service) for statement in trust.get("Statement", [])):
            raise NotTrusted(f"the trust policy of {role_arn} does not let {service} assume it")
        assumed = sts_backends[account]["aws"].assume_role(
            region_name="us-east-1",
            role_session_name=session,
            role_arn=role_arn,
            policy="",
            duration=duration,
            external_id="",
        )
        return {
            "AccessKeyId": assumed.access_key_id,
            "SecretAccessKey": assumed.secret_access_key,
            "SessionToken": assumed.session_token,
            "Expiration": assumed.expiration,
        }

    return assume


def start(port: int | None = None, enforce_iam: bool = False) -> tuple[ThreadedMotoServer, str]:
    """moto on 127.0.0.1 (`port`, else a free one), with IoT tagging (ECR is bound to a registry apart:
    bind_ecr_to_registry); with `enforce_iam`, every request must be signed by a known key and be allowed by its
    identity's policies."""
    install_iot_tagging()
    install_device_keys()
    install_stable_endpoints()
    install_condition_semantics()
    install_iam_enforcement()
    port = port or free_port()
    server = _Server(port, enforce_iam)
    server.start()
    return server, f"http://127.0.0.1:{port}"
