"""Who signs a request to the local cloud's Greengrass endpoint, and what a device may do there.

On AWS a core device authenticates with its X.509 certificate over mutual TLS, and what it may do is what the IoT
policies attached to that certificate allow (developer guide: device-auth, "Authorize core devices to interact
with AWS services"). Here requests are plain HTTP signed with SigV4, so a device signs with its certificate's id
as the key id and, as the secret, the SHA-256 of the private key IoT generated with it (CreateKeysAndCertificate):
only who holds the key can sign, as only who holds it can complete the TLS handshake. The local cloud notes that
digest when it makes the key (localcloud.moto_aws.install_device_keys); it never stores the key.

A caller is then the stack's owner (its IAM user: everything, as moto's IAM enforcement checks), another IAM user
of the stack (a deploying identity: what its identity policies allow, localcloud.iam_users), or a device: its
certificate, the things it is attached to, and the IoT policies attached to it, evaluated by localcloud.iotpolicy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from localcloud import iotpolicy

CertificateLookup = Callable[[str], "Certificate | None"]


class User(Protocol):
    """An IAM user of the stack (localcloud.iam_users.User)."""

    @property
    def arn(self) -> str: ...

    @property
    def secret(self) -> str: ...

    def permits(self, action: str, resource: str = "*") -> bool: ...


UserLookup = Callable[[str], "User | None"]


def device_secret(private_key_pem: str) -> str:
    """The SigV4 secret a device signs with: the digest of its private key."""
    return hashlib.sha256(private_key_pem.encode()).hexdigest()


@dataclass(frozen=True)
class Certificate:
    """An ACTIVE certificate as IoT holds it: what the device it stands for may do."""

    certificate_id: str
    arn: str
    secret: str  # device_secret of its key
    things: tuple[str, ...]  # the things it is attached to (AttachThingPrincipal)
    policies: tuple[list[iotpolicy.Statement], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Caller:
    key_id: str
    certificate: Certificate | None = None  # None: a key of the stack's (its owner's) or a user's
    user: User | None = None  # an IAM user other than the owner

    @property
    def is_device(self) -> bool:
        return self.certificate is not None

    def acts_for(self, thing: str) -> bool:
        """A device acts for the things its certificate is attached to, and no other."""
        return self.certificate is None or thing in self.certificate.things

    def allowed(self, request: iotpolicy.Request, region: str, account: str) -> bool:
        """What a device's IoT policies allow; the stack's own keys may do everything. An IAM user's identity
        policies are evaluated by the endpoint (IAM_PREFIX), not here."""
        if self.certificate is None:
            return True
        thing = self.certificate.things[0] if self.certificate.things else None
        connection = iotpolicy.Connection(region, account, thing or self.key_id, thing)
        return iotpolicy.allowed(self.certificate.policies, request, connection)


class Identities:
    """The keys the Greengrass endpoint knows: the stack's own (key id -> secret), every ACTIVE certificate, and the
    access keys of the stack's IAM users."""

    def __init__(
        self, keys: dict[str, str], certificates: CertificateLookup, users: UserLookup = lambda key_id: None
    ) -> None:
        self.keys, self.certificates, self.users = keys, certificates, users

    def secret(self, key_id: str) -> str | None:
        if key_id in self.keys:
            return self.keys[key_id]
        certificate = self.certificates(key_id)
        if certificate is not None:
            return certificate.secret
        user = self.users(key_id)
        return user.secret if user is not None else None

    def caller(self, key_id: str) -> Caller:
        if key_id in self.keys:
            return Caller(key_id)
        certificate = self.certificates(key_id)
        return Caller(key_id, certificate, None if certificate is not None else self.users(key_id))


def statements_of(documents: Iterable[str]) -> tuple[list[iotpolicy.Statement], ...]:
    return tuple(iotpolicy.statements(document) for document in documents)
