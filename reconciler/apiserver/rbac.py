"""RBAC evaluation: may this user do this to that? Purely computational, no I/O.

Mirrors upstream's `plugin/pkg/auth/authorizer/rbac`: a request's `Attributes` are allowed
when some rule of some role bound to the user matches them. A role reaches a user through a
ClusterRoleBinding (everywhere) or a RoleBinding (in the binding's namespace only; it may
point at a Role of that namespace or at a ClusterRole). Nothing denies: RBAC only allows.

Worked example: a RoleBinding `read` in namespace `default` binds Role `pod-reader`
(`get`, `list` on `pods` in group `""`) to ServiceAccount `default:app`. For user
`system:serviceaccount:default:app`, `list pods in default` matches (verb, group and
resource all match); `list pods in kube-system` does not (the binding is in `default`);
`get pods/log in default` does not (`pods` does not cover the `log` subresource; `pods/*` or
`*/log` would).

`RbacIndex` is built once from the stored Roles, ClusterRoles and bindings (`authz.py`
rebuilds it after any of them changes) and then answers many requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ALL",
    "Attributes",
    "Decision",
    "PolicyRule",
    "RbacIndex",
    "UserInfo",
    "rule_allows",
    "service_account_username",
]

JSONDict = dict[str, Any]

ALL = "*"
RBAC_GROUP = "rbac.authorization.k8s.io"
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class UserInfo:
    """Who is asking, as authentication established it (upstream's `user.Info`)."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Attributes:
    """What is being asked (upstream's `authorizer.Attributes`): a resource request
    (verb, group, resource, subresource, namespace, name) or a non-resource one (verb, path)."""

    verb: str
    resource_request: bool = True
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


@dataclass(frozen=True)
class PolicyRule:
    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @staticmethod
    def parse(raw: Mapping[str, Any]) -> PolicyRule:
        def strings(key: str) -> tuple[str, ...]:
            value = raw.get(key) or ()
            return tuple(str(v) for v in value) if isinstance(value, list) else ()

        return PolicyRule(
            strings("verbs"),
            strings("apiGroups"),
            strings("resources"),
            strings("resourceNames"),
            strings("nonResourceURLs"),
        )

    def to_json(self) -> JSONDict:
        out: JSONDict = {"verbs": list(self.verbs)}
        if self.api_groups or self.resources:
            out["apiGroups"] = list(self.api_groups)
            out["resources"] = list(self.resources)
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        if self.non_resource_urls:
            out["nonResourceURLs"] = list(self.non_resource_urls)
        return out


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


def service_account_username(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def _verb_matches(rule: PolicyRule, verb: str) -> bool:
    return ALL in rule.verbs or verb in rule.verbs


def _resource_matches(rule: PolicyRule, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for candidate in rule.resources:
        if candidate in (ALL, combined):
            return True
        if subresource and candidate == f"*/{subresource}":
            return True
    return False


def _url_matches(rule: PolicyRule, path: str) -> bool:
    for candidate in rule.non_resource_urls:
        if candidate in (ALL, path):
            return True
        if candidate.endswith("*") and path.startswith(candidate[:-1]):
            return True
    return False


def rule_allows(rule: PolicyRule, attrs: Attributes) -> bool:
    """Does `rule` cover `attrs`? (upstream's `RuleAllows`)."""
    if not _verb_matches(rule, attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule, attrs.path)
    if not (ALL in rule.api_groups or attrs.api_group in rule.api_groups):
        return False
    if not _resource_matches(rule, attrs.resource, attrs.subresource):
        return False
    return not rule.resource_names or attrs.name in rule.resource_names


@dataclass(frozen=True)
class _Subject:
    kind: str
    name: str
    namespace: str


@dataclass(frozen=True)
class _Binding:
    """A (Cluster)RoleBinding reduced to what evaluation needs."""

    kind: str  # RoleBinding | ClusterRoleBinding
    name: str
    namespace: str
    role_kind: str  # Role | ClusterRole
    role_name: str
    subjects: tuple[_Subject, ...]

    def applies_to(self, user: UserInfo) -> _Subject | None:
        for subject in self.subjects:
            if subject.kind == "User" and subject.name == user.name:
                return subject
            if subject.kind == "Group" and subject.name in user.groups:
                return subject
            if subject.kind == "ServiceAccount":
                namespace = subject.namespace or self.namespace
                if namespace and user.name == service_account_username(namespace, subject.name):
                    return subject
        return None


def _parse_binding(obj: Mapping[str, Any], kind: str) -> _Binding | None:
    meta = obj.get("metadata") or {}
    ref = obj.get("roleRef") or {}
    if not isinstance(ref, Mapping) or not ref.get("name"):
        return None
    subjects = []
    for raw in obj.get("subjects") or ():
        if isinstance(raw, Mapping):
            subjects.append(
                _Subject(
                    str(raw.get("kind") or ""),
                    str(raw.get("name") or ""),
                    str(raw.get("namespace") or ""),
                )
            )
    return _Binding(
        kind,
        str(meta.get("name") or ""),
        str(meta.get("namespace") or ""),
        str(ref.get("kind") or ""),
        str(ref.get("name") or ""),
        tuple(subjects),
    )


def _rules(obj: Mapping[str, Any]) -> tuple[PolicyRule, ...]:
    return tuple(PolicyRule.parse(r) for r in obj.get("rules") or () if isinstance(r, Mapping))


def _describe_subject(subject: _Subject, binding_namespace: str) -> str:
    """As upstream words it: `ServiceAccount "NAME/NAMESPACE"`, `User "NAME"`."""
    if subject.kind == "ServiceAccount":
        return f'ServiceAccount "{subject.name}/{subject.namespace or binding_namespace}"'
    return f'{subject.kind} "{subject.name}"'


class RbacIndex:
    """Roles and bindings, parsed once; answers `authorize` and `rules_for`."""

    def __init__(
        self,
        roles: Iterable[Mapping[str, Any]] = (),
        cluster_roles: Iterable[Mapping[str, Any]] = (),
        role_bindings: Iterable[Mapping[str, Any]] = (),
        cluster_role_bindings: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        self._roles: dict[tuple[str, str], tuple[PolicyRule, ...]] = {}
        for role in roles:
            meta = role.get("metadata") or {}
            self._roles[(str(meta.get("namespace") or ""), str(meta.get("name") or ""))] = _rules(
                role
            )
        self._cluster_roles = {
            str((r.get("metadata") or {}).get("name") or ""): _rules(r) for r in cluster_roles
        }
        self._cluster_bindings = [
            b
            for b in (_parse_binding(o, "ClusterRoleBinding") for o in cluster_role_bindings)
            if b is not None and b.role_kind == "ClusterRole"
        ]
        self._bindings: dict[str, list[_Binding]] = {}
        for obj in role_bindings:
            binding = _parse_binding(obj, "RoleBinding")
            if binding is not None:
                self._bindings.setdefault(binding.namespace, []).append(binding)

    def _role_rules(self, binding: _Binding) -> Sequence[PolicyRule]:
        if binding.role_kind == "ClusterRole":
            return self._cluster_roles.get(binding.role_name, ())
        if binding.role_kind == "Role":
            return self._roles.get((binding.namespace, binding.role_name), ())
        return ()

    def _applicable(self, user: UserInfo, namespace: str) -> Iterable[tuple[_Binding, _Subject]]:
        """The bindings that apply to `user` for a request in `namespace` ("": cluster)."""
        for binding in self._cluster_bindings:
            subject = binding.applies_to(user)
            if subject is not None:
                yield binding, subject
        if namespace:
            for binding in self._bindings.get(namespace, ()):
                subject = binding.applies_to(user)
                if subject is not None:
                    yield binding, subject

    def authorize(self, user: UserInfo, attrs: Attributes) -> Decision:
        namespace = attrs.namespace if attrs.resource_request else ""
        for binding, subject in self._applicable(user, namespace):
            for rule in self._role_rules(binding):
                if rule_allows(rule, attrs):
                    label = (
                        f"{binding.name}/{binding.namespace}" if binding.namespace else binding.name
                    )
                    return Decision(
                        True,
                        f'RBAC: allowed by {binding.kind} "{label}" of {binding.role_kind} '
                        f'"{binding.role_name}" to {_describe_subject(subject, binding.namespace)}',
                    )
        return Decision(False)

    def rules_for(self, user: UserInfo, namespace: str) -> list[PolicyRule]:
        """Every rule that applies to `user` in `namespace`, in binding order, without
        duplicates (what a SelfSubjectRulesReview lists)."""
        seen: set[PolicyRule] = set()
        out: list[PolicyRule] = []
        for binding, _subject in self._applicable(user, namespace):
            for rule in self._role_rules(binding):
                if rule not in seen:
                    seen.add(rule)
                    out.append(rule)
        return out
