"""The review APIs: questions asked by POST, answered in the response, never stored.

    authorization.k8s.io/v1  SelfSubjectAccessReview   may I ...?         kubectl auth can-i
                             SubjectAccessReview       may user X ...?
                             LocalSubjectAccessReview  ... in namespace N (from the URL)
                             SelfSubjectRulesReview    what may I do in N? kubectl auth can-i --list
    authentication.k8s.io/v1 SelfSubjectReview         who am I?           kubectl auth whoami

Each answer is the posted object with `status` filled, as upstream's registries return it.
Who may *ask* is itself RBAC (`create` on the review resource): `system:basic-user` lets
every authenticated user ask about themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.apiserver import errors
from reconciler.apiserver.authn import Authenticator
from reconciler.apiserver.authz import Authorizer
from reconciler.apiserver.errors import ApiError, Cause
from reconciler.apiserver.rbac import Attributes, UserInfo
from reconciler.apiserver.resources import ResourceType
from reconciler.apiserver.sa_tokens import API_AUDIENCES

__all__ = ["answer"]

JSONDict = dict[str, Any]


def _invalid(
    rt: ResourceType, field: str, message: str, reason: str = "FieldValueInvalid"
) -> ApiError:
    return errors.invalid(rt.kind, "", rt.group, [Cause(field, message, reason)])


def _object(rt: ResourceType, body: object) -> JSONDict:
    if not isinstance(body, dict):
        raise errors.bad_request(f"the request body must be a {rt.kind} object")
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if (api_version and api_version != rt.api_version) or (kind and kind != rt.kind):
        raise errors.bad_request(
            f"the request body is {kind or '?'} {api_version or '?'}, not {rt.kind} "
            f"{rt.api_version}"
        )
    spec = body.get("spec")
    if spec is not None and not isinstance(spec, dict):
        raise _invalid(rt, "spec", "must be an object")
    out = dict(body)
    out["apiVersion"], out["kind"] = rt.api_version, rt.kind
    out["metadata"] = dict(body.get("metadata") or {})
    out["metadata"].setdefault("creationTimestamp", None)
    return out


def _str(rt: ResourceType, raw: Mapping[str, Any], key: str, path: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _invalid(rt, f"{path}.{key}", "must be a string")
    return value


def _attributes(rt: ResourceType, spec: Mapping[str, Any]) -> Attributes:
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (resource is None) == (non_resource is None):
        raise _invalid(
            rt,
            "spec.resourceAttributes",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )
    if non_resource is not None:
        if not isinstance(non_resource, dict):
            raise _invalid(rt, "spec.nonResourceAttributes", "must be an object")
        path = "spec.nonResourceAttributes"
        return Attributes(
            verb=_str(rt, non_resource, "verb", path),
            resource_request=False,
            path=_str(rt, non_resource, "path", path),
        )
    if not isinstance(resource, dict):
        raise _invalid(rt, "spec.resourceAttributes", "must be an object")
    path = "spec.resourceAttributes"
    return Attributes(
        verb=_str(rt, resource, "verb", path),
        api_group=_str(rt, resource, "group", path),
        api_version=_str(rt, resource, "version", path),
        resource=_str(rt, resource, "resource", path),
        subresource=_str(rt, resource, "subresource", path),
        namespace=_str(rt, resource, "namespace", path),
        name=_str(rt, resource, "name", path),
    )


def _subject(rt: ResourceType, spec: Mapping[str, Any]) -> UserInfo:
    """The user a (Local)SubjectAccessReview asks about."""
    user = _str(rt, spec, "user", "spec")
    groups = spec.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise _invalid(rt, "spec.groups", "must be a list of strings")
    if not user and not groups:
        raise _invalid(rt, "spec.user", "at least one of user or group must be specified")
    extra_raw = spec.get("extra") or {}
    if not isinstance(extra_raw, dict):
        raise _invalid(rt, "spec.extra", "must be an object of string lists")
    extra = {str(k): tuple(str(v) for v in (vs or ())) for k, vs in extra_raw.items()}
    return UserInfo(user, tuple(groups), _str(rt, spec, "uid", "spec"), extra)


def _access_status(authorizer: Authorizer, user: UserInfo, attrs: Attributes) -> JSONDict:
    decision = authorizer.authorize(user, attrs)
    status: JSONDict = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return status


def _user_info(user: UserInfo) -> JSONDict:
    info: JSONDict = {"username": user.name}
    if user.uid:
        info["uid"] = user.uid
    if user.groups:
        info["groups"] = list(user.groups)
    if user.extra:
        info["extra"] = {k: list(v) for k, v in user.extra.items()}
    return info


def answer(
    authorizer: Authorizer,
    rt: ResourceType,
    namespace: str,
    user: UserInfo,
    body: object,
    authenticator: Authenticator | None = None,
) -> JSONDict:
    """The answered review for a POST of `body` to `rt` (in `namespace` for the local one).
    A TokenReview is answered by `authenticator`, as the API authenticates requests."""
    obj = _object(rt, body)
    spec: JSONDict = obj.get("spec") or {}
    if rt.kind == "SelfSubjectReview":
        obj["status"] = {"userInfo": _user_info(user)}
        return obj
    if rt.kind == "TokenReview":
        assert authenticator is not None
        token = _str(rt, spec, "token", "spec")
        wanted = spec.get("audiences") or list(API_AUDIENCES)
        if not isinstance(wanted, list) or not all(isinstance(a, str) for a in wanted):
            raise _invalid(rt, "spec.audiences", "must be a list of strings")
        reviewed, audiences = authenticator.review(token, wanted)
        if reviewed is None:
            obj["status"] = {"user": {}, "error": "invalid bearer token"}
        else:
            obj["status"] = {
                "authenticated": True,
                "user": _user_info(reviewed),
                "audiences": list(audiences),
            }
        return obj
    if rt.kind == "SelfSubjectRulesReview":
        target = _str(rt, spec, "namespace", "spec")
        rules = authorizer.rules_for(user, target)
        obj["status"] = {
            "resourceRules": [r.to_json() for r in rules if not r.non_resource_urls],
            "nonResourceRules": [r.to_json() for r in rules if r.non_resource_urls],
            "incomplete": False,
        }
        return obj
    attrs = _attributes(rt, spec)
    if rt.kind == "SelfSubjectAccessReview":
        obj["status"] = _access_status(authorizer, user, attrs)
        return obj
    if rt.kind == "LocalSubjectAccessReview":
        if spec.get("nonResourceAttributes") is not None:
            raise _invalid(rt, "spec.nonResourceAttributes", "disallowed on this kind of request")
        meta_ns = obj["metadata"].get("namespace")
        if meta_ns and meta_ns != namespace:
            raise _invalid(
                rt, "metadata.namespace", f"must match the URL's namespace {namespace!r}"
            )
        if attrs.namespace != namespace:
            raise errors.bad_request(
                f"spec.resourceAttributes.namespace must match namespace: {namespace}"
            )
        obj["metadata"]["namespace"] = namespace
    obj["status"] = _access_status(authorizer, _subject(rt, spec), attrs)
    return obj
