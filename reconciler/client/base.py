"""The one Kubernetes client interface every caller above the API server uses.

Controllers, the node agent, the GitOps engine and the CLI talk to "a Kubernetes API"
through `Client`: `InProcessClient` when they run inside `recon serve`, `HttpClient` when
they point at any cluster through a kubeconfig. Both pass one contract test suite, so code
written against this Protocol behaves the same on the embedded plane and on a real cluster.

Objects are plain dicts (`JSONDict`) as the API serves them; results are private copies
the caller may change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

JSONDict = dict[str, Any]
PatchType = Literal["merge", "strategic", "json"]

PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"


@dataclass(frozen=True)
class ResourceInfo:
    """How the server serves a kind: its URL segment, scope and subresources."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    subresources: frozenset[str] = frozenset()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True)
class ObjectList:
    items: list[JSONDict]
    resource_version: str


@dataclass(frozen=True)
class WatchEvent:
    """ADDED, MODIFIED, DELETED (or BOOKMARK, when asked for) and the object."""

    type: str
    object: JSONDict


class Client(Protocol):
    async def resource(self, api_version: str, kind: str) -> ResourceInfo:
        """How `kind` is served; NotFoundError when the server does not know it."""
        ...

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> JSONDict: ...

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
    ) -> ObjectList:
        """All matching objects (following `continue` pages unless `limit` is given)."""
        ...

    async def create(
        self, obj: JSONDict, *, dry_run: bool = False, field_validation: str = "Strict"
    ) -> JSONDict: ...

    async def update(
        self, obj: JSONDict, *, subresource: str | None = None, dry_run: bool = False
    ) -> JSONDict: ...

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: str = "Strict",
    ) -> JSONDict: ...

    async def apply(
        self, obj: JSONDict, *, field_manager: str, force: bool = False, dry_run: bool = False
    ) -> JSONDict:
        """Server-side apply `obj` (created when missing) as `field_manager`; a conflict with
        another manager's fields is a ConflictError unless `force`."""
        ...

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str | None = None,
        grace_period: int | None = None,
        dry_run: bool = False,
    ) -> JSONDict | None:
        """Delete; returns the object while its deletion is pending (finalizers, grace)."""
        ...

    async def get_scale(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> JSONDict:
        """The `scale` subresource of a scalable object (an autoscaling/v1 Scale: spec.replicas,
        status.replicas, status.selector as a string). NotFoundError when the object is
        missing, or when its kind serves no `scale` subresource, as the server answers."""
        ...

    async def update_scale(
        self,
        api_version: str,
        kind: str,
        name: str,
        scale: JSONDict,
        namespace: str | None = None,
        *,
        dry_run: bool = False,
    ) -> JSONDict:
        """Write `scale` (its spec.replicas; metadata.resourceVersion, when set, must be
        current: ConflictError otherwise) through the `scale` subresource; returns the new
        Scale. Autoscalers change replicas this way without owning the object's spec."""
        ...

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout: float | None = None,
        bookmarks: bool = False,
    ) -> AsyncIterator[WatchEvent]:
        """Events after `resource_version` (all current objects as ADDED when None).
        Ends after `timeout` seconds; raises GoneError when the version is too old.

        The events' objects are read-only: in process they are the store's own objects,
        shared by every watcher (copy one before changing it)."""
        ...

    async def close(self) -> None: ...


def namespace_of(obj: JSONDict, info: ResourceInfo, default: str = "default") -> str | None:
    """The namespace a write of `obj` goes to: its own, or `default` for namespaced kinds."""
    if not info.namespaced:
        return None
    return str((obj.get("metadata") or {}).get("namespace") or default)
