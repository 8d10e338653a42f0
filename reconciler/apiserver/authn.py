"""Authentication: who sent this request (client certificates, bearer tokens), and who it
acts as (impersonation).

Three credentials are accepted, as on a cluster with only these authenticators:

- a client certificate the cluster CA signed (verified in the TLS handshake, `pki.py`; one
  a CertificateSigningRequest got, `csr_signer.py`): user its common name, groups its
  organizations and `system:authenticated`; looked at first, as upstream's x509
  authenticator;

- the admin token (`DATA_DIR/token`, in the kubeconfig): user `recon-admin`, groups
  `system:masters` and `system:authenticated`; compared first, in constant time, so the
  admin's requests cost what they cost before RBAC existed;
- a ServiceAccount JWT this server signed (`sa_tokens.py`): user
  `system:serviceaccount:NS:NAME`, groups `system:serviceaccounts`,
  `system:serviceaccounts:NS`, `system:authenticated` — as long as the ServiceAccount (and
  the Pod or Secret the token is bound to, or the Secret a legacy token lives in) still
  exists with the uid the token names.

Anything else is unauthenticated (the middleware answers 401). `impersonate` then applies
the `Impersonate-*` headers (kubectl's `--as`, `--as-group`, `--as-uid`) after checking,
one by one, that the real user may `impersonate` each user, group, uid and extra (RBAC),
as upstream's impersonation filter does.
"""

from __future__ import annotations

import base64
import hmac
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.rbac import SA_PREFIX, Attributes, Decision, UserInfo
from reconciler.apiserver.sa_tokens import API_AUDIENCES, TokenClaims, TokenSigner
from reconciler.clock import Clock

__all__ = [
    "AUTHENTICATED",
    "MASTERS",
    "Authenticator",
    "certificate_user",
    "impersonate",
    "service_account_groups",
]

JSONDict = dict[str, Any]
# (storage key, namespace, name) -> the stored object, or None.
Lookup = Callable[[str, str, str], JSONDict | None]
Authorize = Callable[[UserInfo, Attributes], Decision]
Forbidden = Callable[[UserInfo, Attributes], ApiError]

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
_ANONYMOUS = "system:anonymous"
_UNAUTHENTICATED = "system:unauthenticated"
_AUTH_GROUP = "authentication.k8s.io"
_EXTRA_PREFIX = "impersonate-extra-"


def service_account_groups(namespace: str) -> tuple[str, ...]:
    return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")


def _uid_of(obj: JSONDict | None) -> str | None:
    if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
        return None
    return str((obj.get("metadata") or {}).get("uid") or "")


def certificate_user(peer: Mapping[str, Any] | None) -> UserInfo | None:
    """The user a verified client certificate names (`ssl.SSLSocket.getpeercert()`'s
    dict): its subject's common name, its organizations as groups, as upstream's x509
    authenticator; None without a certificate or a common name."""
    if not peer:
        return None
    name = ""
    groups: list[str] = []
    for rdn in peer.get("subject") or ():
        for key, value in rdn:
            if key == "commonName" and not name:
                name = str(value)
            elif key == "organizationName":
                groups.append(str(value))
    if not name:
        return None
    return UserInfo(name, (*groups, AUTHENTICATED))


class Authenticator:
    """Bearer token → `UserInfo`, or None."""

    def __init__(
        self, admin_token: str, admin_name: str, signer: TokenSigner, lookup: Lookup, clock: Clock
    ) -> None:
        self._admin = f"Bearer {admin_token}".encode()
        self.admin = UserInfo(admin_name, (MASTERS, AUTHENTICATED))
        self.signer = signer
        self.lookup = lookup
        self.clock = clock

    def authenticate(self, authorization: str) -> UserInfo | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.review(token.strip())[0]

    def review(
        self, token: str, audiences: Sequence[str] = API_AUDIENCES
    ) -> tuple[UserInfo | None, tuple[str, ...]]:
        """Who `token` is, and which of `audiences` it is valid for (a TokenReview's answer;
        the admin token is the API's alone)."""
        if not token:
            return None, ()
        if hmac.compare_digest(f"Bearer {token}".encode(), self._admin):
            api = tuple(a for a in audiences if a in API_AUDIENCES)
            return (self.admin, api) if api else (None, ())
        claims = self.signer.verify(token, self.clock.now(), audiences)
        if claims is None or not self._alive(claims, token):
            return None, ()
        user = UserInfo(
            f"{SA_PREFIX}{claims.namespace}:{claims.service_account}",
            (*service_account_groups(claims.namespace), AUTHENTICATED),
            claims.service_account_uid,
        )
        return user, claims.audiences

    def _alive(self, claims: TokenClaims, token: str) -> bool:
        """Does what the token names still exist, with the same uids?"""
        account = self.lookup("core/serviceaccounts", claims.namespace, claims.service_account)
        if _uid_of(account) != claims.service_account_uid:
            return False
        if claims.bound is not None:
            resource = "core/pods" if claims.bound.kind == "Pod" else "core/secrets"
            bound = self.lookup(resource, claims.namespace, claims.bound.name)
            if _uid_of(bound) != claims.bound.uid:
                return False
        if claims.legacy_secret:
            secret = self.lookup("core/secrets", claims.namespace, claims.legacy_secret)
            if secret is None or _uid_of(secret) is None:
                return False
            stored = str((secret.get("data") or {}).get("token") or "")
            try:
                if base64.b64decode(stored).decode() != token:
                    return False
            except (ValueError, UnicodeDecodeError):
                return False
        return True


def _check(
    real: UserInfo,
    attrs: Attributes,
    authorize: Authorize,
    forbidden: Forbidden,
) -> None:
    if MASTERS in real.groups:
        return
    if not authorize(real, attrs).allowed:
        raise forbidden(real, attrs)


def impersonate(
    real: UserInfo,
    headers: Mapping[str, str],
    header_values: Callable[[str], list[str]],
    authorize: Authorize,
    forbidden: Forbidden,
) -> UserInfo:
    """The user a request acts as: `real`, or whom its `Impersonate-*` headers name, when
    `real` may impersonate all of it (else a 403 naming the first thing it may not)."""
    user = headers.get("Impersonate-User", "")
    groups = header_values("Impersonate-Group")
    uid = headers.get("Impersonate-Uid", "")
    extra: dict[str, tuple[str, ...]] = {}
    for header in headers:
        if header.lower().startswith(_EXTRA_PREFIX):
            key = urllib.parse.unquote(header[len(_EXTRA_PREFIX) :]).lower()
            extra[key] = tuple(header_values(header))
    if not user:
        if groups or uid or extra:
            raise ApiError(
                400,
                "BadRequest",
                "Impersonate-Group, Impersonate-Uid and Impersonate-Extra-* need "
                "Impersonate-User: requested impersonation without impersonating a user",
            )
        return real

    if user.startswith(SA_PREFIX) and user.count(":") == 3:
        namespace, name = user[len(SA_PREFIX) :].split(":")
        target = Attributes(
            "impersonate", resource="serviceaccounts", namespace=namespace, name=name
        )
        default_groups: tuple[str, ...] = service_account_groups(namespace)
    else:
        target = Attributes("impersonate", resource="users", name=user)
        default_groups = ()
    _check(real, target, authorize, forbidden)
    for group in groups:
        _check(real, Attributes("impersonate", resource="groups", name=group), authorize, forbidden)
    if uid:
        attrs = Attributes("impersonate", api_group=_AUTH_GROUP, resource="uids", name=uid)
        _check(real, attrs, authorize, forbidden)
    for key, values in extra.items():
        for value in values:
            attrs = Attributes(
                "impersonate",
                api_group=_AUTH_GROUP,
                resource="userextras",
                subresource=key,
                name=value,
            )
            _check(real, attrs, authorize, forbidden)

    final_groups = list(groups) if groups else list(default_groups)
    marker = _UNAUTHENTICATED if user == _ANONYMOUS else AUTHENTICATED
    if marker not in final_groups:
        final_groups.append(marker)
    return UserInfo(user, tuple(final_groups), uid, extra)
