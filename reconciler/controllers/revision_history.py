"""ControllerRevisions: the template history of StatefulSets and DaemonSets.

Why it exists: `kubectl rollout history|undo statefulset/daemonset` read the apps/v1
ControllerRevision objects a workload controls (listed by the workload's selector, filtered
by controller ownerReference). Each revision stores, in `data`, a strategic merge patch that
puts one pod template back — `{"spec": {"template": {..., "$patch": "replace"}}}` — and
`kubectl rollout undo` sends exactly that patch. Both controllers keep this history the same
way, so it lives here, as pure functions; the controllers perform the writes.

The rules, as upstream's `pkg/controller/history` and the two controllers apply them:

- the *update* revision is the one whose data equals the owner's current template; when none
  does, a new one is made, numbered one past the highest (`<owner>-<hash>`, the hash of the
  data plus `status.collisionCount`, so a name taken by a different revision is resolved by
  bumping the count);
- when an equal revision exists but is not the newest (a rollback: the template went back to
  an earlier one), that revision is renumbered to the top instead of being duplicated;
- revisions beyond `revisionHistoryLimit` go, oldest first, except those still in use;
- orphaned revisions the owner's selector matches are the owner's: it adopts them (left by
  an owner of the same name deleted with `--cascade=orphan`, they hold the names its
  templates hash to; ignored, every such name would count as a collision, and the pods it
  adopts along with them would all be replaced for carrying an unknown revision).

Concrete example: revisions 1 (image v1) and 2 (image v2), template set back to v1 →
no new object; revision 1 is renumbered 3, and `rollout history` lists 2 and 3.

Everything here is pure except `store_revision` and `adopt_revisions`, the writes both
controllers make the same way (create or renumber the update revision, resolving hash
collisions; adopt orphans).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import AlreadyExistsError, ConflictError, NotFoundError
from reconciler.controllers.deployment_util import template_hash
from reconciler.controllers.podutil import controller_ref, owner_reference
from reconciler.selectors import SelectorError, label_selector_from_spec

__all__ = [
    "RevisionChoice",
    "adopt_revisions",
    "choose_revision",
    "claim_revisions",
    "new_revision",
    "normalized",
    "revision_data",
    "revision_number",
    "revision_template",
    "revisions_to_prune",
    "same_data",
    "sort_revisions",
    "store_revision",
]

JSONDict = dict[str, Any]

_NAME_PREFIX_MAX = 223  # upstream ControllerRevisionName: prefix trimmed so the name stays valid


def normalized(value: Any) -> Any:
    """A deep copy without nulls (a Go client writes `creationTimestamp: null`, meaning absent)."""
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


def revision_data(owner: Mapping[str, Any]) -> JSONDict:
    """The patch that restores `owner`'s pod template (upstream `getPatch`)."""
    template = normalized((owner.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def revision_template(revision: Mapping[str, Any]) -> JSONDict:
    """The pod template a revision stores."""
    data = revision.get("data") or {}
    template = normalized(((data.get("spec") or {}).get("template")) or {})
    template.pop("$patch", None)
    return template  # type: ignore[no-any-return]


def same_data(revision: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    return bool(normalized(revision.get("data") or {}) == normalized(data))


def revision_number(revision: Mapping[str, Any]) -> int:
    try:
        return int(revision.get("revision") or 0)
    except (TypeError, ValueError):
        return 0


def sort_revisions(revisions: Iterable[JSONDict]) -> list[JSONDict]:
    """Oldest first: by revision number, then creation time, then name."""

    def key(r: JSONDict) -> tuple[int, str, str]:
        meta = r.get("metadata") or {}
        return (revision_number(r), str(meta.get("creationTimestamp") or ""), str(meta.get("name")))

    return sorted(revisions, key=key)


def new_revision(
    owner: Mapping[str, Any],
    data: JSONDict,
    number: int,
    collision_count: int,
    hash_label: str,
) -> JSONDict:
    """A ControllerRevision of `owner` (not yet stored): named `<owner>-<hash>`, labelled with
    the template's labels (so the owner's selector lists it) plus `hash_label: <hash>`."""
    meta = owner.get("metadata") or {}
    template_labels = (((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
        "labels"
    ) or {}
    digest = template_hash(data, collision_count)
    revision_meta: JSONDict = {
        "name": f"{str(meta.get('name', ''))[:_NAME_PREFIX_MAX]}-{digest}",
        "namespace": meta.get("namespace"),
        "labels": {**template_labels, hash_label: digest},
        "ownerReferences": [owner_reference(owner)],
    }
    if meta.get("annotations"):
        revision_meta["annotations"] = dict(meta["annotations"])  # change-cause for history
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": revision_meta,
        "data": copy.deepcopy(data),
        "revision": number,
    }


@dataclass(frozen=True)
class RevisionChoice:
    """What the owner's history should look like now.

    `update` is the revision matching the current template: an existing object, or a new
    one to create (`create`). `renumber`, when set, is the number the existing `update`
    must be given (a rollback moves it to the top). `current` is the revision named by the
    owner's `status.currentRevision` (StatefulSets), or `update` when there is none."""

    update: JSONDict
    current: JSONDict
    create: bool = False
    renumber: int | None = None

    @property
    def update_name(self) -> str:
        return str((self.update.get("metadata") or {}).get("name", ""))

    @property
    def current_name(self) -> str:
        return str((self.current.get("metadata") or {}).get("name", ""))


def claim_revisions(
    owner: Mapping[str, Any], revisions: Iterable[JSONDict]
) -> tuple[list[JSONDict], list[JSONDict]]:
    """(the revisions of `owner`, the orphans among them it must adopt), from every revision
    in its namespace: those it controls, and the orphans its selector matches (upstream
    `ListControllerRevisions` and `adoptOrphanRevisions`). An owner being deleted adopts
    nothing."""
    meta = owner.get("metadata") or {}
    uid = meta.get("uid")
    try:
        selector = label_selector_from_spec((owner.get("spec") or {}).get("selector") or {})
    except SelectorError:
        selector = None
    adopting = selector is not None and not selector.empty and not meta.get("deletionTimestamp")
    owned: list[JSONDict] = []
    orphans: list[JSONDict] = []
    for revision in revisions:
        ref = controller_ref(revision)
        if ref is not None:
            if ref.get("uid") == uid:
                owned.append(revision)
            continue
        labels = (revision.get("metadata") or {}).get("labels") or {}
        if adopting and selector is not None and selector.matches(labels):
            owned.append(revision)
            orphans.append(revision)
    return owned, orphans


def choose_revision(
    owner: Mapping[str, Any],
    revisions: Iterable[JSONDict],
    hash_label: str,
    current_name: str = "",
) -> RevisionChoice:
    """Pick (or describe) the update revision of `owner` among the revisions it controls."""
    ordered = sort_revisions(revisions)
    data = revision_data(owner)
    next_number = (revision_number(ordered[-1]) + 1) if ordered else 1
    equal = [r for r in ordered if same_data(r, data)]
    renumber: int | None = None
    if equal and equal[-1] is ordered[-1]:
        update, create = equal[-1], False
    elif equal:
        update, create, renumber = equal[-1], False, next_number
    else:
        collision = int((owner.get("status") or {}).get("collisionCount") or 0)
        update, create = new_revision(owner, data, next_number, collision, hash_label), True
    current = next(
        (r for r in ordered if (r.get("metadata") or {}).get("name") == current_name), update
    )
    return RevisionChoice(update=update, current=current, create=create, renumber=renumber)


def revisions_to_prune(revisions: Iterable[JSONDict], live: set[str], limit: int) -> list[str]:
    """Names of the oldest revisions not in `live` beyond `limit` of them."""
    idle = [
        str((r.get("metadata") or {}).get("name"))
        for r in sort_revisions(revisions)
        if (r.get("metadata") or {}).get("name") not in live
    ]
    excess = len(idle) - max(limit, 0)
    return idle[:excess] if excess > 0 else []


async def adopt_revisions(client: Client, owner: JSONDict, orphans: Iterable[JSONDict]) -> None:
    """Make `owner` the controller of `orphans`, each only as the cache saw it (its
    resourceVersion is the patch's precondition): one changed or gone meanwhile, perhaps
    adopted by another owner, is skipped, and the next reconcile sees how things are."""
    ref = owner_reference(owner)
    for orphan in orphans:
        meta = orphan.get("metadata") or {}
        patch = {
            "metadata": {
                "ownerReferences": [ref],
                "resourceVersion": meta.get("resourceVersion"),
            }
        }
        with contextlib.suppress(NotFoundError, ConflictError):
            await client.patch(
                "apps/v1",
                "ControllerRevision",
                str(meta.get("name")),
                patch,
                namespace=str(meta.get("namespace") or ""),
                patch_type="strategic",
            )


async def store_revision(
    client: Client, owner: JSONDict, choice: RevisionChoice
) -> JSONDict | None:
    """Write what `choice` says and return the stored update revision; None after a hash
    collision (a different revision holds the name: `status.collisionCount` was bumped, so
    the next reconcile hashes to another name)."""
    meta = owner.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    if choice.renumber is not None:
        return await client.patch(
            "apps/v1",
            "ControllerRevision",
            choice.update_name,
            {"revision": choice.renumber},
            namespace=namespace,
        )
    if not choice.create:
        return choice.update
    try:
        return await client.create(choice.update)
    except AlreadyExistsError:
        existing = await client.get("apps/v1", "ControllerRevision", choice.update_name, namespace)
        ours = (controller_ref(existing) or {}).get("uid") == meta.get("uid")
        if ours and same_data(existing, choice.update.get("data") or {}):
            return existing  # written by an earlier reconcile the informer has not shown yet
    collisions = int((owner.get("status") or {}).get("collisionCount") or 0) + 1
    await client.patch(
        str(owner.get("apiVersion")),
        str(owner.get("kind")),
        str(meta.get("name")),
        {"status": {"collisionCount": collisions}},
        namespace=namespace,
        subresource="status",
    )
    return None
