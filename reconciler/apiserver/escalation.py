"""RBAC escalation prevention: nobody grants permissions they do not hold.

Upstream's RBAC storage refuses a Role or ClusterRole whose rules its writer does not hold
(in that namespace, or cluster-wide for a ClusterRole), and a RoleBinding or
ClusterRoleBinding to a role whose rules the writer does not hold — unless the writer may
`escalate` on that role or `bind` it. Without this, anyone allowed to write Roles in a
namespace could give themselves everything in it. The answer is upstream's 403:

    roles.rbac.authorization.k8s.io "pod-admin" is forbidden: user "jane" (groups=["dev"
    "system:authenticated"]) is attempting to grant RBAC permissions not currently held:
    {APIGroups:[""], Resources:["pods"], Verbs:["delete"]}

Only requests over HTTP are checked, by the user `Access` admitted (`CURRENT_USER`, set per
request); `system:masters` and the controllers in the process are not.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from reconciler.apiserver.authn import MASTERS
from reconciler.apiserver.authz import Authorizer
from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.rbac import Attributes, PolicyRule, UserInfo, rule_allows

__all__ = ["CURRENT_USER", "EscalationGuard", "uncovered"]

JSONDict = dict[str, Any]
Lookup = Callable[[str, str, str], Mapping[str, Any] | None]

GROUP = "rbac.authorization.k8s.io"
CURRENT_USER: ContextVar[UserInfo | None] = ContextVar("recon_current_user", default=None)
"""The user an HTTP request acts as, while it is handled (None: an in-process write)."""

_ROLE_KINDS = {"Role": "roles", "ClusterRole": "clusterroles"}
_BINDING_KINDS = {"RoleBinding", "ClusterRoleBinding"}


def _atoms(rule: PolicyRule) -> Iterator[tuple[PolicyRule, Attributes]]:
    """The single permissions a rule grants, each as a rule and as what it asks for."""
    for verb in rule.verbs:
        for url in rule.non_resource_urls:
            yield (
                PolicyRule((verb,), non_resource_urls=(url,)),
                Attributes(verb, resource_request=False, path=url),
            )
        for group in rule.api_groups:
            for resource in rule.resources:
                base, _, sub = resource.partition("/")
                for name in rule.resource_names or ("",):
                    yield (
                        PolicyRule((verb,), (group,), (resource,), (name,) if name else ()),
                        Attributes(verb, True, group, "", base, sub, "", name),
                    )


def uncovered(held: Sequence[PolicyRule], wanted: Sequence[PolicyRule]) -> list[PolicyRule]:
    """The permissions of `wanted` no rule of `held` grants (a wildcard is granted only by a
    wildcard, as upstream's `Covers`), verbs of the same resource merged."""
    missing: dict[tuple[Any, ...], list[str]] = {}
    for rule in wanted:
        for atom, asked in _atoms(rule):
            if not any(rule_allows(h, asked) for h in held):
                key = (atom.api_groups, atom.resources, atom.resource_names, atom.non_resource_urls)
                verbs = missing.setdefault(key, [])
                if atom.verbs[0] not in verbs:
                    verbs.append(atom.verbs[0])
    return [PolicyRule(tuple(verbs), *key) for key, verbs in missing.items()]


def _go_rule(rule: PolicyRule) -> str:
    """A rule as upstream prints it in the message: `{APIGroups:[""], Resources:["pods"],
    Verbs:["delete"]}`."""

    def strings(values: Sequence[str]) -> str:
        return "[" + " ".join(json.dumps(v) for v in values) + "]"

    parts = []
    if rule.non_resource_urls:
        parts.append(f"NonResourceURLs:{strings(rule.non_resource_urls)}")
    else:
        parts.append(f"APIGroups:{strings(rule.api_groups)}")
        parts.append(f"Resources:{strings(rule.resources)}")
        if rule.resource_names:
            parts.append(f"ResourceNames:{strings(rule.resource_names)}")
    parts.append(f"Verbs:{strings(rule.verbs)}")
    return "{" + ", ".join(parts) + "}"


class EscalationGuard:
    """Called by `ObjectService` before an RBAC object is stored."""

    def __init__(self, authorizer: Authorizer, lookup: Lookup) -> None:
        self.authorizer = authorizer
        self.lookup = lookup  # (storage key, namespace, name) -> stored object

    def check(self, kind: str, plural: str, obj: Mapping[str, Any]) -> None:
        user = CURRENT_USER.get()
        if user is None or MASTERS in user.groups:
            return
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        if kind in _ROLE_KINDS:
            if self._may(user, "escalate", _ROLE_KINDS[kind], namespace, name):
                return
            wanted = [PolicyRule.parse(r) for r in obj.get("rules") or [] if isinstance(r, dict)]
        elif kind in _BINDING_KINDS:
            ref = obj.get("roleRef") or {}
            role_kind, role_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
            role_ns = namespace if role_kind == "Role" else ""
            plural_of_role = _ROLE_KINDS.get(role_kind, "")
            # `bind` is asked in the binding's namespace (upstream's BindingAuthorized): one
            # may be allowed to bind a ClusterRole in one namespace only
            if plural_of_role and self._may(user, "bind", plural_of_role, namespace, role_name):
                return
            role = self.lookup(f"{GROUP}/{plural_of_role}", role_ns, role_name)
            rules = (role or {}).get("rules") or []
            wanted = [PolicyRule.parse(r) for r in rules if isinstance(r, dict)]
        else:
            return
        missing = uncovered(self.authorizer.rules_for(user, namespace), wanted)
        if missing:
            groups = " ".join(json.dumps(g) for g in user.groups)
            rules = "\n".join(_go_rule(r) for r in missing)
            raise ApiError(
                403,
                "Forbidden",
                f'{plural}.{GROUP} "{name}" is forbidden: user "{user.name}" (groups=[{groups}]) '
                f"is attempting to grant RBAC permissions not currently held:\n{rules}",
                plural,
                name,
                GROUP,
            )

    def _may(self, user: UserInfo, verb: str, resource: str, namespace: str, name: str) -> bool:
        attrs = Attributes(verb, True, GROUP, "v1", resource, "", namespace, name)
        return self.authorizer.authorize(user, attrs).allowed
