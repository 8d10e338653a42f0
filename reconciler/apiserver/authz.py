"""Authorization: the RBAC index over the stored policy, kept current, and 403s in upstream's
words.

`system:masters` is allowed everything without looking at any policy (upstream's
privileged-group authorizer, in front of RBAC): the admin's requests never build or walk the
index. For everyone else the index (`rbac.py`) is built from the four RBAC kinds on first
use and rebuilt lazily after any of them changes — a store listener only marks it stale, so a
burst of `kubectl apply` of fifty Roles costs one rebuild, on the next request that needs it.
"""

from __future__ import annotations

from reconciler.apiserver.authn import MASTERS
from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.rbac import Attributes, Decision, PolicyRule, RbacIndex, UserInfo
from reconciler.store.sqlite import Store
from reconciler.store.watch import Event

__all__ = ["RBAC_RESOURCES", "Authorizer", "forbidden"]

_RBAC = "rbac.authorization.k8s.io"
ROLES = f"{_RBAC}/roles"
CLUSTER_ROLES = f"{_RBAC}/clusterroles"
ROLE_BINDINGS = f"{_RBAC}/rolebindings"
CLUSTER_ROLE_BINDINGS = f"{_RBAC}/clusterrolebindings"
RBAC_RESOURCES = frozenset({ROLES, CLUSTER_ROLES, ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS})


def _message(user: UserInfo, attrs: Attributes) -> str:
    """Upstream's `forbiddenMessage`."""
    if not attrs.resource_request:
        return f'User "{user.name}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    head = f'User "{user.name}" cannot {attrs.verb} resource "{resource}" in API group '
    head += f'"{attrs.api_group}"'
    if attrs.namespace:
        return f'{head} in the namespace "{attrs.namespace}"'
    return f"{head} at the cluster scope"


def forbidden(user: UserInfo, attrs: Attributes, reason: str = "") -> ApiError:
    """The 403 Status upstream answers (`responsewriters.Forbidden` + `NewForbidden`):
    `pods "web" is forbidden: User "u" cannot get resource "pods" in API group "" in the
    namespace "default"`."""
    detail = _message(user, attrs)
    if reason:
        detail = f"{detail}: {reason}"
    group = attrs.api_group if attrs.resource_request else ""
    resource = attrs.resource if attrs.resource_request else ""
    if not resource:
        message = f"forbidden: {detail}"
    else:
        qualified = f"{resource}.{group}" if group else resource
        message = (
            f'{qualified} "{attrs.name}" is forbidden: {detail}'
            if attrs.name
            else f"{qualified} is forbidden: {detail}"
        )
    return ApiError(403, "Forbidden", message, kind=resource, name=attrs.name, group=group)


class Authorizer:
    """RBAC over the store's policy, with the `system:masters` fast path."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._index: RbacIndex | None = None
        store.hub.add_listener(self.observe)

    def observe(self, event: Event) -> None:
        """A store listener: any change to an RBAC object makes the index stale."""
        if event.resource in RBAC_RESOURCES:
            self._index = None

    def index(self) -> RbacIndex:
        index = self._index
        if index is None:
            bodies = {key: [s.body for s in self.store.list(key)] for key in RBAC_RESOURCES}
            index = self._index = RbacIndex(
                bodies[ROLES],
                bodies[CLUSTER_ROLES],
                bodies[ROLE_BINDINGS],
                bodies[CLUSTER_ROLE_BINDINGS],
            )
        return index

    def authorize(self, user: UserInfo, attrs: Attributes) -> Decision:
        if MASTERS in user.groups:
            return Decision(True, "")
        return self.index().authorize(user, attrs)

    def rules_for(self, user: UserInfo, namespace: str) -> list[PolicyRule]:
        return self.index().rules_for(user, namespace)
