"""The clusterrole-aggregation controller: a ClusterRole with an `aggregationRule` gets the
rules of every ClusterRole its selectors match.

As upstream's: for each selector in order, the matching ClusterRoles (but the aggregated
one itself) sorted by name, their rules appended unless an equal rule is already there. The
bootstrap roles `admin`, `edit` and `view` are filled this way from `system:aggregate-to-*`
(and from each other: `view` carries the `aggregate-to-edit` label, `edit` the
`aggregate-to-admin` one), and so is any role a user labels `aggregate-to-view`, so that
custom resources' permissions join the defaults without editing them.

`aggregate` is pure; the controller only writes `rules` when they differ.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import NotFoundError
from reconciler.clock import Clock
from reconciler.controllers.base import Result
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.queue import WorkQueue
from reconciler.selectors import SelectorError, label_selector_from_spec

__all__ = ["ClusterRoleAggregationController", "aggregate"]

JSONDict = dict[str, Any]

_API = "rbac.authorization.k8s.io/v1"


def aggregate(role: JSONDict, cluster_roles: Iterable[JSONDict]) -> list[JSONDict] | None:
    """The rules `role` should have, or None when it has no aggregationRule."""
    rule = role.get("aggregationRule")
    if not isinstance(rule, dict):
        return None
    name = (role.get("metadata") or {}).get("name")
    candidates = sorted(
        (r for r in cluster_roles if (r.get("metadata") or {}).get("name") != name),
        key=lambda r: str((r.get("metadata") or {}).get("name") or ""),
    )
    rules: list[JSONDict] = []
    for raw in rule.get("clusterRoleSelectors") or ():
        try:
            selector = label_selector_from_spec(raw)
        except SelectorError:
            continue  # the API validates selectors; an old bad one matches nothing
        for other in candidates:
            if not selector.matches((other.get("metadata") or {}).get("labels") or {}):
                continue
            for candidate in other.get("rules") or ():
                if candidate not in rules:
                    rules.append(candidate)
    return rules


class ClusterRoleAggregationController:
    name = "clusterrole-aggregation"

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.roles: Informer

    def setup(self, factory: InformerFactory) -> None:
        self.roles = factory.informer(_API, "ClusterRole")

        def any_change(_obj: JSONDict) -> None:
            # Any role may be selected by any aggregated one: look at them all again.
            for role in self.roles.list():
                if isinstance(role.get("aggregationRule"), dict):
                    self.queue.add(("", str(role["metadata"]["name"])))

        self.roles.add_handlers(Handlers(any_change, lambda _o, n: any_change(n), any_change))

    async def reconcile(self, key: ObjKey) -> Result:
        _, name = key
        role = self.roles.get("", name)
        if role is None:
            return Result()
        rules = aggregate(role, self.roles.list())
        if rules is None or rules == (role.get("rules") or []):
            return Result()
        patch = {
            "rules": rules,
            "metadata": {"resourceVersion": role["metadata"].get("resourceVersion")},
        }
        with contextlib.suppress(NotFoundError):
            await self.client.patch(_API, "ClusterRole", name, patch)
        return Result()
