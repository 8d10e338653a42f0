"""`POST serviceaccounts/NAME/token`: a TokenRequest answered with a signed, bound token.

As upstream's `pkg/registry/core/serviceaccount/storage/token.go`: the ServiceAccount must
exist; `spec.expirationSeconds` defaults to 3600 and may not be under 600 (ten minutes);
`spec.audiences` defaults to the API server's own; `spec.boundObjectRef` (a Pod or a Secret
of the same namespace, checked to exist with the given uid) ties the token's life to that
object. Nothing is stored: the token is the answer. A dry run answers without a token.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reconciler.apiserver import errors
from reconciler.apiserver.errors import ApiError, Cause
from reconciler.apiserver.objects import ObjectService
from reconciler.apiserver.sa_tokens import API_AUDIENCES, BoundObject, TokenSigner
from reconciler.clock import Clock, rfc3339

__all__ = ["DEFAULT_EXPIRATION", "MIN_EXPIRATION", "issue_token", "request_token"]

JSONDict = dict[str, Any]

DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
_MAX_EXPIRATION = 1 << 32
_BINDABLE = {"Pod": "pods", "Secret": "secrets"}


def _invalid(name: str, field: str, message: str) -> ApiError:
    return errors.invalid("TokenRequest", name, "authentication.k8s.io", [Cause(field, message)])


def _spec(body: object, name: str) -> JSONDict:
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a TokenRequest object")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if (kind and kind != "TokenRequest") or (
        api_version and api_version != "authentication.k8s.io/v1"
    ):
        raise errors.bad_request(
            f"the request body is {kind} {api_version}, not TokenRequest authentication.k8s.io/v1"
        )
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise _invalid(name, "spec", "must be an object")
    return spec


def _expiration(spec: JSONDict, name: str) -> int:
    value = spec.get("expirationSeconds")
    if value is None:
        return DEFAULT_EXPIRATION
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(name, "spec.expirationSeconds", "must be an integer")
    if value < MIN_EXPIRATION:
        raise _invalid(
            name,
            "spec.expirationSeconds",
            f"Invalid value: {value}: may not specify a duration less than 10 minutes",
        )
    if value > _MAX_EXPIRATION:
        raise _invalid(
            name,
            "spec.expirationSeconds",
            f"Invalid value: {value}: may not specify a duration larger than 2^32 seconds",
        )
    return value


def _audiences(spec: JSONDict, name: str) -> list[str]:
    value = spec.get("audiences")
    if not value:
        return list(API_AUDIENCES)
    if not isinstance(value, list) or not all(isinstance(a, str) and a for a in value):
        raise _invalid(name, "spec.audiences", "must be a list of non-empty strings")
    return list(value)


def _bound(service: ObjectService, namespace: str, spec: JSONDict, name: str) -> BoundObject | None:
    ref = spec.get("boundObjectRef")
    if ref is None:
        return None
    if not isinstance(ref, dict):
        raise _invalid(name, "spec.boundObjectRef", "must be an object")
    kind = str(ref.get("kind") or "")
    plural = _BINDABLE.get(kind)
    if plural is None or ref.get("apiVersion") not in (None, "", "v1"):
        raise errors.bad_request(
            f"cannot bind token for object of kind {kind or '?'} "
            f"({ref.get('apiVersion') or 'v1'}): only v1 Pods and Secrets"
        )
    target = str(ref.get("name") or "")
    if not target:
        raise _invalid(name, "spec.boundObjectRef.name", "Required value")
    rt = service.registry.lookup("", "v1", plural)
    assert rt is not None
    obj = service.get(rt, namespace, target)  # 404 in the object's words when missing
    uid = str(obj["metadata"].get("uid") or "")
    wanted = ref.get("uid")
    if wanted and wanted != uid:
        raise errors.conflict(
            plural,
            target,
            "",
            f"the UID in the bound object reference ({wanted}) does not match the UID in "
            f"record ({uid}). The object might have been deleted and then recreated",
        )
    return BoundObject(kind, target, uid)


def _account(service: ObjectService, namespace: str, name: str) -> JSONDict:
    rt = service.registry.lookup("", "v1", "serviceaccounts")
    assert rt is not None
    return service.get(rt, namespace, name)  # 404 in the account's words when missing


def issue_token(
    service: ObjectService,
    signer: TokenSigner,
    clock: Clock,
    namespace: str,
    name: str,
    spec: JSONDict,
) -> tuple[str, int]:
    """(token, expiry in epoch seconds) for ServiceAccount `namespace/name` as a
    TokenRequest with `spec` would issue it (checked the same way), for a caller in the
    process (the node agent's projected token volumes); ApiError when it cannot be."""
    account = _account(service, namespace, name)
    return signer.issue(
        namespace,
        name,
        str(account["metadata"].get("uid") or ""),
        _audiences(spec, name),
        clock.now(),
        _expiration(spec, name),
        _bound(service, namespace, spec, name),
    )


def request_token(
    service: ObjectService,
    signer: TokenSigner,
    clock: Clock,
    namespace: str,
    name: str,
    body: object,
    dry_run: bool,
) -> JSONDict:
    """The answered TokenRequest for ServiceAccount `namespace/name`."""
    account, spec = _account(service, namespace, name), _spec(body, name)
    expiration = _expiration(spec, name)
    audiences = _audiences(spec, name)
    bound = _bound(service, namespace, spec, name)
    now = clock.now()
    answer_spec: JSONDict = {"audiences": audiences, "expirationSeconds": expiration}
    if bound is not None:
        answer_spec["boundObjectRef"] = {
            "kind": bound.kind,
            "apiVersion": "v1",
            "name": bound.name,
            "uid": bound.uid,
        }
    out: JSONDict = {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": rfc3339(now)},
        "spec": answer_spec,
        "status": {"token": "", "expirationTimestamp": None},
    }
    if dry_run:
        return out
    token, expires = signer.issue(
        namespace,
        name,
        str(account["metadata"].get("uid") or ""),
        audiences,
        now,
        expiration,
        bound,
    )
    out["status"] = {
        "token": token,
        "expirationTimestamp": rfc3339(datetime.fromtimestamp(expires, UTC)),
    }
    return out
