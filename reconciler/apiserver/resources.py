"""The API server's catalogue of resource types: built-in kinds and CRD-declared ones.

The built-in kinds come from the upstream schema definitions (`reconciler.schema.definitions`):
every persisted kind that has a GA version is served at its newest GA version, as a default
Kubernetes cluster does (alpha and beta-only APIs are off by default there too).

The schemas say what a kind looks like but not how the API *serves* it: its scope, its short
names and categories, which subresources it has. That serving metadata is the small table
below (`_CLUSTER_SCOPED`, `_SHORT_NAMES`, ...), which mirrors what `kubectl api-resources`
prints against a real cluster. Custom resources get all of it from their CRD.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from reconciler.schema.definitions import Definitions, GroupVersionKind

JSONDict = dict[str, Any]

# Kinds the upstream API never stores: request/response types and subresource bodies.
_NOT_STORED = frozenset(
    {
        "Status",
        "Scale",
        "Binding",
        "Eviction",
        "TokenRequest",
        "TokenReview",
        "SelfSubjectReview",
        "SubjectAccessReview",
        "SelfSubjectAccessReview",
        "LocalSubjectAccessReview",
        "SelfSubjectRulesReview",
        "ComponentStatus",
    }
)

_CLUSTER_SCOPED = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("certificates.k8s.io", "ClusterTrustBundle"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("node.k8s.io", "RuntimeClass"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("resource.k8s.io", "DeviceClass"),
        ("resource.k8s.io", "DeviceTaintRule"),
        ("resource.k8s.io", "ResourceSlice"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("storage.k8s.io", "VolumeAttributesClass"),
        ("storagemigration.k8s.io", "StorageVersionMigration"),
        ("internal.apiserver.k8s.io", "StorageVersion"),
    }
)

_SHORT_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "ConfigMap"): ("cm",),
    ("", "Endpoints"): ("ep",),
    ("", "Event"): ("ev",),
    ("", "LimitRange"): ("limits",),
    ("", "Namespace"): ("ns",),
    ("", "Node"): ("no",),
    ("", "PersistentVolume"): ("pv",),
    ("", "PersistentVolumeClaim"): ("pvc",),
    ("", "Pod"): ("po",),
    ("", "ReplicationController"): ("rc",),
    ("", "ResourceQuota"): ("quota",),
    ("", "Service"): ("svc",),
    ("", "ServiceAccount"): ("sa",),
    ("apps", "DaemonSet"): ("ds",),
    ("apps", "Deployment"): ("deploy",),
    ("apps", "ReplicaSet"): ("rs",),
    ("apps", "StatefulSet"): ("sts",),
    ("autoscaling", "HorizontalPodAutoscaler"): ("hpa",),
    ("batch", "CronJob"): ("cj",),
    ("certificates.k8s.io", "CertificateSigningRequest"): ("csr",),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): ("crd", "crds"),
    ("events.k8s.io", "Event"): ("ev",),
    ("networking.k8s.io", "Ingress"): ("ing",),
    ("networking.k8s.io", "NetworkPolicy"): ("netpol",),
    ("policy", "PodDisruptionBudget"): ("pdb",),
    ("scheduling.k8s.io", "PriorityClass"): ("pc",),
    ("storage.k8s.io", "StorageClass"): ("sc",),
}

_ALL_CATEGORY = frozenset(
    {
        ("", "Pod"),
        ("", "Service"),
        ("", "ReplicationController"),
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("autoscaling", "HorizontalPodAutoscaler"),
    }
)

_SCALABLE = frozenset(
    {
        ("", "ReplicationController"),
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "StatefulSet"),
    }
)

_IRREGULAR_PLURALS = {"Endpoints": "endpoints"}

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


def guess_plural(kind: str) -> str:
    """The resource name the API machinery derives from a kind (`UnsafeGuessKindToResource`)."""
    if kind in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[kind]
    singular = kind.lower()
    if singular.endswith("s"):
        return singular + "es"
    if singular.endswith("y"):
        return singular[:-1] + "ies"
    return singular + "s"


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' version ordering: GA > beta > alpha, then by number (v2 > v1)."""
    match = _VERSION_RE.match(version)
    if not match:
        return (-1, 0, 0)
    stability = {"alpha": 0, "beta": 1, None: 2}[match[2]]
    return (stability, int(match[1]), int(match[3] or 0))


# Subresources answered by the node agent through the API server (`pods/log`, `pods/exec`,
# `pods/attach`, `pods/portforward`).
_NODE_SUBRESOURCES = {("", "Pod"): frozenset({"log", "exec", "attach", "portforward"})}

# Subresources that write part of the stored object besides `status` and `scale`:
# `pods/ephemeralcontainers` (`ephemeral_containers.py`, what `kubectl debug` patches).
_STORED_SUBRESOURCES = {
    ("", "Pod"): frozenset({"ephemeralcontainers", "resize"}),
    ("certificates.k8s.io", "CertificateSigningRequest"): frozenset({"approval"}),
}


@dataclass(frozen=True)
class BodySubresource:
    """A subresource whose request body is an object of another kind, as discovery says:
    `pods/eviction` takes a `policy/v1` `Eviction` (kubectl drain looks for exactly this
    entry, group, version and kind, before it evicts instead of deleting)."""

    name: str
    group: str
    version: str
    kind: str
    verbs: tuple[str, ...] = ("create",)


_BODY_SUBRESOURCES = {
    ("", "Pod"): (
        BodySubresource("eviction", "policy", "v1", "Eviction"),
        # how a scheduler other than Recon's assigns a pod (binding.py)
        BodySubresource("binding", "", "v1", "Binding"),
    ),
    # `kubectl create token`: a TokenRequest answered with a signed token (sa_tokens.py).
    ("", "ServiceAccount"): (
        BodySubresource("token", "authentication.k8s.io", "v1", "TokenRequest"),
    ),
}

# Kinds served but never stored: one POST is a question and its answer (`reviews.py`), as
# upstream's create-only review APIs. (group, kind) -> namespaced.
REVIEW_KINDS: dict[tuple[str, str], bool] = {
    ("authorization.k8s.io", "SelfSubjectAccessReview"): False,
    ("authorization.k8s.io", "SubjectAccessReview"): False,
    ("authorization.k8s.io", "LocalSubjectAccessReview"): True,
    ("authorization.k8s.io", "SelfSubjectRulesReview"): False,
    ("authentication.k8s.io", "SelfSubjectReview"): False,
    ("authentication.k8s.io", "TokenReview"): False,
}


@dataclass(frozen=True)
class ResourceType:
    """How one kind is served: its URL segments, scope, names and validation schema source."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()  # "status", "scale", ...: served by the store
    extra_subresources: frozenset[str] = frozenset()  # e.g. pods' "log", served by the node
    body_subresources: tuple[BodySubresource, ...] = ()  # e.g. pods' "eviction"
    verbs: tuple[str, ...] = _ALL_VERBS
    definition: str | None = None  # name in the upstream definitions, for built-in kinds
    storage_version: str | None = None
    """An older version served by conversion (`converted.py`): the version stored."""
    crd_schema: JSONDict | None = field(default=None, compare=False, hash=False)
    crd_name: str | None = None
    printer_columns: tuple[JSONDict, ...] = field(default=(), compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def storage_key(self) -> str:
        """Where objects live in the store: shared by every version of the same resource."""
        return f"{self.group or 'core'}/{self.plural}"

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def is_custom(self) -> bool:
        return self.crd_name is not None

    def path_prefix(self) -> str:
        return f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"


def builtin_types(defs: Definitions) -> list[ResourceType]:
    """One `ResourceType` per stored kind, at its newest GA version."""
    best: dict[tuple[str, str], tuple[tuple[int, int, int], str, str]] = {}
    for gvk, name in defs.kinds().items():
        if gvk.kind in _NOT_STORED:
            continue
        priority = version_priority(gvk.version)
        if priority[0] < 2:
            continue  # alpha and beta APIs are off by default in Kubernetes too
        key = (gvk.group, gvk.kind)
        if key not in best or priority > best[key][0]:
            best[key] = (priority, gvk.version, name)
    out = []
    for (group, kind), (_, version, name) in sorted(best.items()):
        props = defs.get(name).get("properties", {})
        subresources = set()
        if "status" in props:
            subresources.add("status")
        if (group, kind) in _SCALABLE:
            subresources.add("scale")
        subresources |= _STORED_SUBRESOURCES.get((group, kind), frozenset())
        out.append(
            ResourceType(
                group=group,
                version=version,
                kind=kind,
                plural=guess_plural(kind),
                singular=kind.lower(),
                namespaced=(group, kind) not in _CLUSTER_SCOPED,
                short_names=_SHORT_NAMES.get((group, kind), ()),
                categories=("all",) if (group, kind) in _ALL_CATEGORY else (),
                subresources=frozenset(subresources),
                extra_subresources=_NODE_SUBRESOURCES.get((group, kind), frozenset()),
                body_subresources=_BODY_SUBRESOURCES.get((group, kind), ()),
                definition=name,
            )
        )
    out.extend(_unstored_types(defs))
    by_key = {(t.group, t.kind): t for t in out}
    for (group, version, kind), stored_version in _CONVERTED_VERSIONS.items():
        newest = by_key.get((group, kind))
        older = defs.kinds().get(GroupVersionKind(group, version, kind))
        if newest is None or newest.version != stored_version or older is None:
            continue
        out.append(
            dataclasses.replace(
                newest,
                version=version,
                definition=older,
                subresources=frozenset(),
                storage_version=stored_version,
            )
        )
    return out


# Kinds served read-only and never stored, answered when read (`component_status.py`).
READ_ONLY_VERBS = ("get", "list")
_READ_ONLY_KINDS = {("", "ComponentStatus"): ("cs",)}


def _unstored_types(defs: Definitions) -> list[ResourceType]:
    """The kinds served but never stored, at v1: the create-only reviews (`REVIEW_KINDS`)
    and the read-only ones (`_READ_ONLY_KINDS`)."""
    out = []
    for gvk, name in defs.kinds().items():
        key = (gvk.group, gvk.kind)
        if gvk.version != "v1" or (key not in REVIEW_KINDS and key not in _READ_ONLY_KINDS):
            continue
        review = key in REVIEW_KINDS
        out.append(
            ResourceType(
                group=gvk.group,
                version=gvk.version,
                kind=gvk.kind,
                plural=guess_plural(gvk.kind),
                singular=gvk.kind.lower(),
                namespaced=REVIEW_KINDS[key] if review else False,
                short_names=() if review else _READ_ONLY_KINDS[key],
                verbs=("create",) if review else READ_ONLY_VERBS,
                definition=name,
            )
        )
    return out


# Older versions still served, by conversion at the request's edge (`converted.py`):
# (group, version, kind) -> the stored version.
_CONVERTED_VERSIONS = {("autoscaling", "v1", "HorizontalPodAutoscaler"): "v2"}


def crd_types(crd: JSONDict) -> list[ResourceType]:
    """The served versions of a CustomResourceDefinition (`apiextensions.k8s.io/v1`)."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    out = []
    for ver in spec.get("versions", []):
        if not ver.get("served", True):
            continue
        subs = ver.get("subresources") or {}
        schema = (ver.get("schema") or {}).get("openAPIV3Schema") or {}
        out.append(
            ResourceType(
                group=spec["group"],
                version=ver["name"],
                kind=names["kind"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=frozenset(k for k in ("status", "scale") if k in subs),
                crd_schema=schema,
                crd_name=crd["metadata"]["name"],
                printer_columns=tuple(ver.get("additionalPrinterColumns") or ()),
            )
        )
    return out


class ResourceRegistry:
    """Lookup of resource types by URL, by kind and by storage key; CRDs come and go at runtime.

    Reads vastly outnumber CRD changes, so lookups use immutable snapshots swapped under a lock.
    """

    def __init__(self, types: Iterable[ResourceType]) -> None:
        self._lock = threading.Lock()
        self._builtin = list(types)
        self._custom: dict[str, list[ResourceType]] = {}
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_gvk: dict[tuple[str, str, str], ResourceType] = {}
        self._rebuild()
        self.generation = 0

    def _rebuild(self) -> None:
        all_types = self._builtin + [t for ts in self._custom.values() for t in ts]
        self._by_path = {(t.group, t.version, t.plural): t for t in all_types}
        self._by_gvk = {(t.group, t.version, t.kind): t for t in all_types}

    def all(self) -> list[ResourceType]:
        return list(self._by_path.values())

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        return self._by_gvk.get((group, version, kind))

    def group_versions(self) -> dict[str, list[str]]:
        """Group name → served versions, preferred (highest priority) first."""
        groups: dict[str, set[str]] = {}
        for t in self._by_path.values():
            groups.setdefault(t.group, set()).add(t.version)
        return {g: sorted(vs, key=version_priority, reverse=True) for g, vs in groups.items()}

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (t for t in self._by_path.values() if t.group == group and t.version == version),
            key=lambda t: t.plural,
        )

    def set_crd(self, crd: JSONDict) -> None:
        with self._lock:
            self._custom[crd["metadata"]["name"]] = crd_types(crd)
            self._rebuild()
            self.generation += 1

    def remove_crd(self, name: str) -> None:
        with self._lock:
            if self._custom.pop(name, None) is not None:
                self._rebuild()
                self.generation += 1
