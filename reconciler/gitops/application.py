"""The Application resource as the sync engine reads it: a typed view of its spec. Pure.

The CRD (`schemas/application-crd.yaml`) has the API server apply defaults; this view
applies them again, so an Application written to a cluster whose CRD lacks them (an older
install) behaves the same. Durations are Go's (`90s`, `1m30s`, `1h`), as Argo CD and Flux
users write them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.durations import parse_go_duration
from reconciler.gitops.sync_options import prune_propagation

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "AppSpec",
    "Retry",
    "parse_duration",
]

GROUP, VERSION, KIND, PLURAL = "recon.dev", "v1alpha1", "Application", "applications"
API_VERSION = f"{GROUP}/{VERSION}"

JSONDict = dict[str, Any]


def parse_duration(text: str, default: float) -> float:
    """Seconds in a Go duration (`1m30s`); `default` for an empty or malformed one."""
    if not (text or "").strip():
        return default
    try:
        return parse_go_duration(text)
    except ValueError:
        return default


@dataclass(frozen=True)
class Retry:
    """A failed sync is retried after `duration`, multiplied by `factor` up to `max`."""

    limit: int | None = None  # None: retry forever (automated syncs)
    duration: float = 5.0
    factor: int = 2
    max_duration: float = 180.0

    def delay(self, attempt: int) -> float:
        """The wait before retry number `attempt` (1-based)."""
        return float(min(self.duration * self.factor ** max(attempt - 1, 0), self.max_duration))


@dataclass(frozen=True)
class AppSpec:
    namespace: str
    name: str
    repo_url: str
    target_revision: str = "HEAD"
    path: str = "."
    recurse: bool = True
    credentials_secret: str | None = None
    destination_namespace: str | None = None
    automated: bool = False
    prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False
    """`automated.allowEmpty`: an empty render prunes everything (Argo CD's)."""
    interval: float = 60.0
    retry: Retry = field(default_factory=Retry)
    ignore_differences: tuple[JSONDict, ...] = ()
    create_namespace: bool = False
    """`syncOptions: [CreateNamespace=true]`: make the destination namespace when missing."""
    server_side_apply: bool = False
    """`syncOptions: [ServerSideApply=true]`: apply by field ownership, not kubectl's
    three-way merge (an object can ask for it alone with its own sync-options)."""
    sync_options: tuple[str, ...] = ()
    """`spec.syncPolicy.syncOptions` as written (`SyncEngine.check` refuses unknown ones)."""
    prune_propagation: str = "Background"
    """`PrunePropagationPolicy=`: the API's propagationPolicy for pruned objects."""
    validate: bool = True
    """False with `Validate=false`: unknown fields are dropped, not errors (an object's
    own `Validate=` wins)."""
    fail_on_shared_resource: bool = False
    """`FailOnSharedResource=true`: a desired object another Application owns fails the
    sync before anything is applied."""
    apply_out_of_sync_only: bool = False
    """`ApplyOutOfSyncOnly=true`: objects that compare Synced are not written."""
    replace: bool = False
    """`Replace=true`: objects are replaced (PUT whole, or created), not merged."""
    skip_dry_run_on_missing_resource: bool = False
    """`SkipDryRunOnMissingResource=true`: custom resources of kinds nobody declares yet
    are accepted unvalidated (an object's own option wins)."""

    @property
    def key(self) -> str:
        """`namespace/name`: the value of the ownership annotation on what it deploys."""
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_object(cls, obj: JSONDict) -> AppSpec:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        source = spec.get("source") or {}
        policy = spec.get("syncPolicy") or {}
        automated = policy.get("automated")
        retry = policy.get("retry") or {}
        backoff = retry.get("backoff") or {}
        limit = retry.get("limit")
        options = tuple(str(o) for o in policy.get("syncOptions") or ())
        return cls(
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta.get("name") or ""),
            repo_url=str(source.get("repoURL") or ""),
            target_revision=str(source.get("targetRevision") or "HEAD"),
            path=str(source.get("path") or "."),
            recurse=bool((source.get("directory") or {}).get("recurse", True)),
            credentials_secret=source.get("credentialsSecret") or None,
            destination_namespace=(spec.get("destination") or {}).get("namespace") or None,
            automated=isinstance(automated, dict),
            prune=bool((automated or {}).get("prune", False)),
            self_heal=bool((automated or {}).get("selfHeal", False)),
            allow_empty=bool((automated or {}).get("allowEmpty", False)),
            interval=max(parse_duration(str(policy.get("interval") or ""), 60.0), 1.0),
            retry=Retry(
                limit=int(limit) if isinstance(limit, int) else None,
                duration=parse_duration(str(backoff.get("duration") or ""), 5.0),
                factor=int(backoff.get("factor") or 2),
                max_duration=parse_duration(str(backoff.get("maxDuration") or ""), 180.0),
            ),
            ignore_differences=tuple(spec.get("ignoreDifferences") or ()),
            create_namespace="CreateNamespace=true" in options,
            server_side_apply="ServerSideApply=true" in options,
            sync_options=options,
            prune_propagation=prune_propagation(options),
            validate="Validate=false" not in options,
            fail_on_shared_resource="FailOnSharedResource=true" in options,
            apply_out_of_sync_only="ApplyOutOfSyncOnly=true" in options,
            replace="Replace=true" in options,
            skip_dry_run_on_missing_resource="SkipDryRunOnMissingResource=true" in options,
        )
