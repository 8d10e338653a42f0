"""The semantics of the Kubernetes API on top of the kind-agnostic store.

Every write, whether it arrives over HTTP or from a controller in the same process, goes
through `ObjectService`: it validates (schema, metadata), defaults, stamps `uid`,
`creationTimestamp` and `generation`, keeps `status` and spec apart (status subresource),
enforces optimistic concurrency, implements graceful deletion with finalizers and the
propagation policies, and keeps the CRD-declared types in the registry in step with the
CRDs stored. Nothing here knows about HTTP; handlers translate requests into these calls.

A rejected write stores nothing: every check runs on a private copy before the single
store call that commits it.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from reconciler import limit_ranges, resource_quota, storage_classes
from reconciler.apiserver import csr, errors
from reconciler.apiserver.defaults import after_uid, apply_defaults
from reconciler.apiserver.ephemeral_containers import ephemeral_update
from reconciler.apiserver.errors import ApiError, Cause
from reconciler.apiserver.escalation import CURRENT_USER
from reconciler.apiserver.immutable import immutable_errors
from reconciler.apiserver.pod_resize import resize_update
from reconciler.apiserver.pod_security_admission import (
    namespace_label_errors,
    namespace_warnings,
    pod_update_matters,
    pod_verdict,
    template_of,
    template_warnings,
)
from reconciler.apiserver.pod_update import pod_update_errors
from reconciler.apiserver.priority import (
    admit_pod,
    check_class,
    check_class_delete,
    keep_pod_priority,
)
from reconciler.apiserver.resources import ResourceRegistry, ResourceType
from reconciler.apiserver.sa_admission import (
    missing_account_error,
    mount_service_account_token,
    service_account_name,
)
from reconciler.apiserver.service_alloc import SERVICE_RESOURCE, ServiceAllocator
from reconciler.apiserver.validators import KindValidators
from reconciler.clock import Clock, rfc3339
from reconciler.merge import (
    PatchError,
    PatchTestFailedError,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
)
from reconciler.merge.server_side_apply import ApplyConflictError, track_update
from reconciler.merge.server_side_apply import apply as server_side_apply
from reconciler.schema.defaulting import apply_defaults as apply_schema_defaults
from reconciler.schema.definitions import Definitions
from reconciler.schema.metadata import metadata_errors, secret_data_errors
from reconciler.schema.patchmeta import PatchMeta
from reconciler.schema.semantics import spec_errors
from reconciler.schema.validation import (
    Validator,
    custom_resource_schema,
    prune,
)
from reconciler.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
    supported_field,
)
from reconciler.store import errors as store_errors
from reconciler.store.sqlite import Store, Stored
from reconciler.store.watch import Event, Watcher

JSONDict = dict[str, Any]
JSONList = list[JSONDict]
StrList = list[str]

PATCH_JSON = "application/json-patch+json"
PATCH_MERGE = "application/merge-patch+json"
PATCH_STRATEGIC = "application/strategic-merge-patch+json"
PATCH_APPLY = "application/apply-patch+yaml"
# Who wrote, for managedFields, when a write names no fieldManager (in-process controllers).
DEFAULT_FIELD_MANAGER = "recon"

_SERVER_SET_METADATA = (
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)
CRD_RESOURCE = "apiextensions.k8s.io/customresourcedefinitions"
POD_RESOURCE = "core/pods"
PVC_RESOURCE = "core/persistentvolumeclaims"
CSR_RESOURCE = "certificates.k8s.io/certificatesigningrequests"
LIMIT_RANGE_RESOURCE = "core/limitranges"
QUOTA_RESOURCE = "core/resourcequotas"
STORAGE_CLASS_RESOURCE = "storage.k8s.io/storageclasses"
RBAC_GROUP = "rbac.authorization.k8s.io"
SERVICE_ACCOUNT_RESOURCE = "core/serviceaccounts"
PRIORITY_CLASS_RESOURCE = "scheduling.k8s.io/priorityclasses"
NAMESPACE_RESOURCE = "core/namespaces"


@dataclass(frozen=True)
class ListResult:
    items: list[JSONDict]  # shared, read-only
    revision: int
    continue_token: str | None
    remaining: int | None
    texts: list[str] = field(default_factory=list)  # the items' stored JSON, same order


@dataclass(frozen=True)
class Selection:
    """Parsed label and field selectors of a list or watch request."""

    labels: LabelSelector | None = None
    fields: FieldSelector | None = None

    def matches(self, obj: JSONDict) -> bool:
        if self.labels is not None and not self.labels.matches(
            obj.get("metadata", {}).get("labels") or {}
        ):
            return False
        return self.fields is None or self.fields.matches(obj)


@dataclass(frozen=True)
class DeleteResult:
    object: JSONDict
    deleted: bool  # False when the deletion waits for finalizers or a grace period


def _spec_part(obj: JSONDict, include_status: bool) -> JSONDict:
    skip = {"metadata", "apiVersion", "kind"} | (set() if include_status else {"status"})
    return {k: v for k, v in obj.items() if k not in skip}


class ObjectService:
    """CRUD, patch, delete and watch with Kubernetes semantics for every registered type."""

    def __init__(
        self,
        store: Store,
        registry: ResourceRegistry,
        defs: Definitions,
        strict_defs: Definitions,
        clock: Clock,
    ) -> None:
        self.store = store
        self.registry = registry
        self.defs = defs
        self.clock = clock
        self._validators = KindValidators(strict_defs)
        self._crd_validators: dict[tuple[str, str, str], Validator] = {}
        for stored in store.list(CRD_RESOURCE):
            registry.set_crd(stored.body)
        # Service cluster IPs and node ports (service_alloc.py): what is taken is rebuilt
        # from the stored Services and kept current by every committed event.
        # The ServiceAccount admission plugin's token volume (`sa_admission.py`): on in
        # `recon serve`, whose node issues the tokens; off for a bare API server.
        self.mount_service_account_tokens = False
        # (kind, plural, object) -> raises for an RBAC write its writer may not make
        # (`escalation.py`; set by the API server, which knows who writes).
        self.rbac_guard: Callable[[str, str, JSONDict], None] | None = None
        # CSR -> raises unless whoever approves it may approve for its signer (`csr.py`;
        # set by the API server, which knows who writes).
        self.csr_approval_guard: Callable[[JSONDict], None] | None = None
        self.service_alloc = ServiceAllocator()
        self.service_alloc.load(s.body for s in store.list(SERVICE_RESOURCE))
        store.hub.add_listener(self.service_alloc.observe)

    # -- selectors -------------------------------------------------------------------

    def selection(self, rt: ResourceType, label: str | None, field: str | None) -> Selection:
        try:
            labels = parse_label_selector(label) if label else None
            fields = parse_field_selector(field) if field else None
        except SelectorError as e:
            raise errors.bad_request(f"unable to parse requirement: {e}") from e
        if fields is not None:
            for req in fields.requirements:
                if not rt.is_custom and not supported_field(rt.kind, req.field):
                    raise errors.bad_request(
                        f'field label not supported: "{req.field}" for {rt.kind}'
                    )
        return Selection(labels, fields)

    # -- reads -----------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> JSONDict:
        try:
            return self.store.get(rt.storage_key, namespace, name).body
        except store_errors.NotFoundError:
            raise errors.not_found(rt.plural, name, rt.group) from None

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        selection: Selection = Selection(),
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        stored = self.store.list(rt.storage_key, namespace)
        revision = self.store.revision
        start_after: tuple[str, str] | None = None
        if continue_token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                start_after = (decoded["ns"], decoded["name"])
                revision = int(decoded["rv"])
            except (ValueError, KeyError, TypeError) as e:
                raise errors.bad_request(f"continue key is not valid: {e}") from e
        items: list[JSONDict] = []
        texts: list[str] = []
        token = None
        remaining = None
        for index, entry in enumerate(stored):
            meta = entry.body.get("metadata", {})
            key = (meta.get("namespace", ""), meta.get("name", ""))
            if start_after is not None and key <= start_after:
                continue
            if not selection.matches(entry.body):
                continue
            if limit and len(items) >= limit:
                last = items[-1]["metadata"]
                token = base64.urlsafe_b64encode(
                    json.dumps(
                        {"rv": revision, "ns": last.get("namespace", ""), "name": last["name"]}
                    ).encode()
                ).decode()
                remaining = sum(1 for e in stored[index:] if selection.matches(e.body))
                break
            items.append(entry.body)
            texts.append(entry.text)
        return ListResult(items, revision, token, remaining, texts)

    def watch(
        self, rt: ResourceType, namespace: str | None, since: int | None
    ) -> tuple[Watcher, JSONList]:
        """Subscribe from `since`; with no revision, the current objects come back as ADDED."""
        initial: list[JSONDict] = []
        if since is None:
            initial = [s.body for s in self.store.list(rt.storage_key, namespace)]
            since = self.store.revision
        try:
            watcher = self.store.hub.subscribe(rt.storage_key, namespace, since)
        except store_errors.GoneError as e:
            raise errors.gone(str(e)) from e
        return watcher, initial

    @staticmethod
    def filter_event(event: Event, selection: Selection) -> tuple[str, JSONDict] | None:
        """The event as a selective watcher sees it: moving in is ADDED, moving out DELETED."""
        now = selection.matches(event.object)
        before = event.previous is not None and selection.matches(event.previous)
        if event.type == "DELETED":
            return ("DELETED", event.object) if now or before else None
        if event.type == "ADDED":
            return ("ADDED", event.object) if now else None
        if now and before:
            return ("MODIFIED", event.object)
        if now:
            return ("ADDED", event.object)
        if before:
            return ("DELETED", event.object)
        return None

    # -- validation ------------------------------------------------------------------

    def _validator(self, rt: ResourceType) -> Validator | None:
        if rt.definition is not None:
            return self._validators.for_definition(rt.definition)
        if rt.crd_schema is not None:
            key = (rt.group, rt.version, rt.kind)
            validator = self._crd_validators.get(key)
            if validator is None:
                schema = custom_resource_schema(rt.crd_schema, rt.api_version, rt.kind)
                validator = self._crd_validators[key] = Validator(schema)
            return validator
        return None

    @staticmethod
    def _default(rt: ResourceType, obj: JSONDict) -> None:
        if rt.crd_schema is not None:
            apply_schema_defaults(rt.crd_schema, obj)
        else:
            apply_defaults(rt.group, rt.kind, obj)

    def _validate(
        self,
        rt: ResourceType,
        obj: JSONDict,
        strict: bool,
        warnings: StrList | None = None,
        spec_checks: bool = False,
    ) -> None:
        """422 for any schema violation. Unknown fields are errors when `strict`; otherwise
        they are dropped with a warning, as the apiserver's `fieldValidation=Warn` does.
        `spec_checks`: also the rules beyond the schema (`schema/semantics.py`), on a create
        or a change of the spec (an object stored before a rule existed can still be
        relabelled, finalized and deleted)."""
        meta = obj.get("metadata") or {}
        name = str(meta.get("name") or meta.get("generateName") or "")
        causes: list[Cause] = []
        validator = self._validator(rt)
        secret = rt.storage_key == "core/secrets"
        if validator is not None:
            for err in validator.errors(obj):
                if err.unknown_field and not strict:
                    prune(obj, err.parts)
                    if warnings is not None:
                        warnings.append(f'unknown field "{err.path}"')
                    continue
                if secret and err.path.startswith(("data", "stringData")):
                    # Secret values never reach an error message (ARCHITECTURE.md, decision 6).
                    causes.append(Cause(err.path, "Invalid value: the value is not shown"))
                else:
                    causes.append(Cause(err.path, err.message))
        if secret:
            causes += secret_data_errors(obj)
        if isinstance(meta, dict):
            causes += metadata_errors(rt.group, rt.kind, meta)
        if spec_checks and not causes and not rt.is_custom:
            causes += [Cause(c.field, c.message) for c in spec_errors(rt.group, rt.kind, obj)]
        if causes:
            raise errors.invalid(rt.kind, name, rt.group, causes)

    def check_schema(self, rt: ResourceType, obj: JSONDict) -> None:
        """422 when `obj` breaks `rt`'s schema (a request in a converted version is checked
        in its own version before it is converted, so errors name the fields as sent)."""
        self._validate(rt, json.loads(json.dumps(obj)), strict=False)

    def _check_envelope(self, rt: ResourceType, obj: object, namespace: str) -> JSONDict:
        if not isinstance(obj, dict):
            raise errors.bad_request("the request body must be a JSON object")
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if (api_version is not None and api_version != rt.api_version) or (
            kind is not None and kind != rt.kind
        ):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version}) or kind ({kind} vs {rt.kind})"
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    def _require_namespace(self, rt: ResourceType, namespace: str) -> None:
        if not rt.namespaced:
            return
        ns = self.store.find(NAMESPACE_RESOURCE, "", namespace)
        if ns is None:
            raise errors.not_found("namespaces", namespace)
        if ns.body.get("metadata", {}).get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f'{rt.plural} "{namespace}" is forbidden: unable to create new content in '
                f"namespace {namespace} because it is being terminated",
                rt.plural,
                namespace,
                rt.group,
            )

    # -- writes ----------------------------------------------------------------------

    def create(
        self,
        rt: ResourceType,
        namespace: str,
        body: object,
        *,
        dry_run: bool = False,
        strict: bool = True,
        warnings: StrList | None = None,
        managed_fields: JSONList | None = None,
    ) -> JSONDict:
        """`managed_fields`: the ownership server-side apply computed (any other create
        records none: objects never applied carry no managedFields, see `apply`)."""
        obj = self._check_envelope(rt, body, namespace)
        meta = obj["metadata"]
        meta.pop("managedFields", None)
        if managed_fields:
            meta["managedFields"] = managed_fields
        # Admission names the object as requested: a generated name does not exist yet.
        requested = str(meta.get("name") or meta.get("generateName") or "")
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(
                    rt.kind,
                    "",
                    rt.group,
                    [
                        Cause(
                            "metadata.name",
                            "Required value: name or generateName is required",
                            "FieldValueRequired",
                        )
                    ],
                )
            meta["name"] = self._generate_name(rt, namespace, str(prefix))
        self._require_namespace(rt, namespace)
        for key in (*_SERVER_SET_METADATA, "resourceVersion"):
            meta.pop(key, None)
        if "status" in rt.subresources and rt.is_custom:
            obj.pop("status", None)
        self._default(rt, obj)
        if rt.storage_key == POD_RESOURCE:
            if (obj.get("spec") or {}).get("ephemeralContainers"):
                # only the ephemeralcontainers subresource adds them, to a running pod
                raise errors.invalid(
                    rt.kind,
                    requested,
                    rt.group,
                    [
                        Cause(
                            "spec.ephemeralContainers",
                            "Forbidden: cannot be set on create",
                            "FieldValueForbidden",
                        )
                    ],
                )
            # priority.py: 403 for an unknown class
            admit_pod(obj, self._priority_classes(), requested)
        if rt.storage_key == PVC_RESOURCE:
            self._admit_default_storage_class(obj)
        if rt.storage_key == CSR_RESOURCE:
            csr.prepare_create(obj, CURRENT_USER.get())
            refused = csr.spec_causes(obj)
            if refused:
                raise errors.invalid(rt.kind, requested, rt.group, refused)
        if rt.storage_key in (POD_RESOURCE, PVC_RESOURCE):
            self._admit_limit_ranges(rt, namespace, obj, requested)
        self._validate(rt, obj, strict, warnings, spec_checks=True)
        self._admit_pod_security(rt, namespace, requested, obj, None, warnings)
        if rt.storage_key == PRIORITY_CLASS_RESOURCE:
            check_class(obj, None, self._priority_classes().values())
        if rt.namespaced:
            self._admit_quotas(rt, namespace, obj, requested)
        if rt.group == RBAC_GROUP and self.rbac_guard is not None:
            self.rbac_guard(rt.kind, rt.plural, obj)
        if rt.storage_key == SERVICE_RESOURCE:
            self.service_alloc.prepare(obj, None)  # cluster IP, node ports (service_alloc.py)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339(self.clock.now())
        after_uid(rt.group, rt.kind, obj)
        if rt.storage_key == POD_RESOURCE:
            account = self._service_account(namespace, obj, requested)
            if self.mount_service_account_tokens:
                mount_service_account_token(obj, account=account)
        if rt.is_custom or "spec" in obj or rt.kind in ("Deployment", "Pod"):
            meta["generation"] = 1
        if rt.storage_key == CRD_RESOURCE:
            self._crd_accepted(obj)
        if dry_run:
            return obj
        try:
            stored = self.store.create(
                rt.storage_key, namespace if rt.namespaced else "", meta["name"], obj
            )
        except store_errors.StoreError as e:
            raise errors.from_store_error(e, rt.plural, meta["name"], rt.group) from e
        self._after_write(rt, stored.body)
        return stored.body

    def _admit_pod_security(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        obj: JSONDict,
        old: JSONDict | None,
        warnings: StrList | None,
    ) -> None:
        """Pod Security Admission (`pod_security_admission.py`): 403 for a pod the
        namespace's enforce level forbids, warnings for the warn level and for workloads'
        templates; 422 for a Namespace with invalid pod-security labels, and warnings about
        the pods a new enforce level would forbid."""
        found: list[str] = []
        if rt.storage_key == NAMESPACE_RESOURCE:
            labels = (obj.get("metadata") or {}).get("labels") or {}
            old_labels = None if old is None else (old.get("metadata") or {}).get("labels") or {}
            bad = namespace_label_errors(labels, old_labels)
            if bad:
                causes = [Cause(f, m, "FieldValueInvalid") for f, m in bad]
                raise errors.invalid(rt.kind, name, rt.group, causes)
            if old is not None:
                pods = (p.body for p in self.store.list(POD_RESOURCE, name))
                found = namespace_warnings(name, old_labels, labels, pods)
        elif rt.storage_key == POD_RESOURCE:
            if old is not None and not pod_update_matters(old, obj):
                return
            refused, found = pod_verdict(self._namespace_labels(namespace), obj)
            if refused is not None:
                raise errors.forbidden(rt.plural, name, rt.group, refused)
        elif rt.namespaced:
            template = template_of(rt.group, rt.kind, obj)
            if template is None:
                return
            if old is not None and template == template_of(rt.group, rt.kind, old):
                return
            found = template_warnings(self._namespace_labels(namespace), template)
        if warnings is not None:
            warnings.extend(found)

    def _namespace_labels(self, namespace: str) -> dict[str, str]:
        found = self.store.find(NAMESPACE_RESOURCE, "", namespace)
        if found is None:
            return {}
        labels = (found.body.get("metadata") or {}).get("labels") or {}
        return labels if isinstance(labels, dict) else {}

    def _check_pod_update(self, rt: ResourceType, old: JSONDict, new: JSONDict) -> None:
        """422 for a spec change a pod does not accept (`pod_update.py`). The stored pod is
        defaulted as the new one was, so a default added since it was stored is no change."""
        stored = json.loads(json.dumps(old))
        self._default(rt, stored)
        causes = pod_update_errors(stored.get("spec") or {}, new.get("spec") or {})
        if causes:
            name = str((new.get("metadata") or {}).get("name") or "")
            raise errors.invalid(rt.kind, name, rt.group, causes)

    def _service_account(self, namespace: str, pod: JSONDict, name: str) -> JSONDict | None:
        """The pod's ServiceAccount; 403 when it names one that does not exist (upstream's
        ServiceAccount admission, `sa_admission.py`)."""
        found = self.store.find(SERVICE_ACCOUNT_RESOURCE, namespace, service_account_name(pod))
        account = found.body if found is not None else None
        why = missing_account_error(pod, account)
        if why is not None:
            raise errors.forbidden("pods", name, "", why)
        return account

    def _admit_default_storage_class(self, claim: JSONDict) -> None:
        """The DefaultStorageClass plugin: a claim that names no class (the field absent,
        not "") gets the default one, if there is one."""
        spec = claim.get("spec")
        if not isinstance(spec, dict) or "storageClassName" in spec:
            return
        name = storage_classes.default_class_name(
            s.body for s in self.store.list(STORAGE_CLASS_RESOURCE)
        )
        if name is not None:
            spec["storageClassName"] = name

    def _admit_limit_ranges(
        self, rt: ResourceType, namespace: str, obj: JSONDict, name: str
    ) -> None:
        """The LimitRanger plugin (`limit_ranges.py`): defaults, then 403 with every bound a
        new pod or claim breaks."""
        ranges = [s.body for s in self.store.list(LIMIT_RANGE_RESOURCE, namespace)]
        if not ranges:
            return
        if rt.storage_key == POD_RESOURCE:
            problems = limit_ranges.admit_pod(obj, ranges)
        else:
            problems = limit_ranges.admit_claim(obj, ranges)
        if problems:
            why = problems[0] if len(problems) == 1 else f"[{', '.join(problems)}]"
            raise errors.forbidden(rt.plural, name, rt.group, why)

    def _admit_quotas(
        self,
        rt: ResourceType,
        namespace: str,
        obj: JSONDict,
        name: str,
        old: JSONDict | None = None,
    ) -> None:
        """The ResourceQuota plugin (`resource_quota.py`): 403 when a new object (or an
        update of `old` that uses more: a Service turned LoadBalancer, a bigger claim) would
        take the namespace over a quota. What is used is counted from the store at this
        moment (writes are serialized), not from the quotas' status, which follows later."""
        quotas = [s.body for s in self.store.list(QUOTA_RESOURCE, namespace)]
        for quota in quotas:
            if old is not None and not resource_quota.uses_more(
                quota, rt.plural, rt.group, old, obj
            ):
                continue
            skip = name if old is not None else None
            used = resource_quota.total_usage(
                quota, self._quota_objects(quota, namespace, rt, skip)
            )
            why = resource_quota.admission_error(
                quota, rt.plural, rt.group, obj, used, check_specified=old is None
            )
            if why is not None:
                raise errors.forbidden(rt.plural, name, rt.group, why)

    def _quota_objects(
        self,
        quota: JSONDict,
        namespace: str,
        updated: ResourceType | None = None,
        skip: str | None = None,
    ) -> Iterator[tuple[str, str, JSONDict]]:
        """(resource, group, object) of the namespace's objects a quota's resources count;
        `skip`: the `updated` object being replaced (counted as it will be, by the caller)."""
        for resource, group in resource_quota.counted_resources(quota):
            for stored in self.store.list(f"{group or 'core'}/{resource}", namespace):
                if (
                    skip is not None
                    and updated is not None
                    and (resource, group) == (updated.plural, updated.group)
                    and stored.body.get("metadata", {}).get("name") == skip
                ):
                    continue
                yield resource, group, stored.body

    def _priority_classes(self) -> dict[str, JSONDict]:
        """Every stored PriorityClass by name (a handful: read when a pod is created)."""
        return {
            str(s.body["metadata"]["name"]): s.body
            for s in self.store.list(PRIORITY_CLASS_RESOURCE)
        }

    def _generate_name(self, rt: ResourceType, namespace: str, prefix: str) -> str:
        alphabet = "bcdfghjklmnpqrstvwxz2456789"
        for _ in range(10):
            name = prefix[:58] + "".join(secrets.choice(alphabet) for _ in range(5))
            if self.store.find(rt.storage_key, namespace if rt.namespaced else "", name) is None:
                return name
        raise ApiError(500, "InternalError", "could not generate a unique name")

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: object,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        strict: bool = True,
        warnings: StrList | None = None,
        field_manager: str = "",
    ) -> JSONDict:
        ns = namespace if rt.namespaced else ""
        obj = self._check_envelope(rt, body, namespace)
        _name_from_url(obj, name)
        current = self._current(rt, ns, name)
        expected = obj["metadata"].get("resourceVersion")
        if expected:
            try:
                expected_rv = int(expected)
            except ValueError as e:
                raise errors.bad_request(f"invalid resourceVersion {expected!r}") from e
            if expected_rv != current.revision:
                raise errors.conflict(
                    rt.plural,
                    name,
                    rt.group,
                    "the object has been modified; please apply your changes to the latest "
                    "version and try again",
                )
        return self._commit_update(
            rt, ns, name, current, obj, subresource, dry_run, strict, warnings, field_manager
        )

    def _current(self, rt: ResourceType, ns: str, name: str) -> Stored:
        found = self.store.find(rt.storage_key, ns, name)
        if found is None:
            raise errors.not_found(rt.plural, name, rt.group)
        return found

    def _commit_update(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        current: Stored,
        obj: JSONDict,
        subresource: str | None,
        dry_run: bool,
        strict: bool,
        warnings: StrList | None = None,
        field_manager: str | None = "",
        tracked_subresource: str | None = None,
    ) -> JSONDict:
        """`field_manager`: who writes, for managedFields; None when `obj` carries the
        ownership already (server-side apply computed it). `tracked_subresource`: the
        subresource the write came through when it is not `subresource` (scale)."""
        old = current.body
        old_meta = old.get("metadata", {})
        meta = obj.setdefault("metadata", {})
        if subresource == "finalize":
            # Only spec.finalizers changes through /finalize (namespaces).
            wanted = obj.get("spec", {}).get("finalizers") or []
            obj = Store.copy_of(current)
            obj.setdefault("spec", {})["finalizers"] = wanted
            meta = obj["metadata"]
        elif subresource == "ephemeralcontainers":
            # Only spec.ephemeralContainers changes through /ephemeralcontainers (pods), and
            # only by additions (`ephemeral_containers.py`).
            obj, refused = ephemeral_update(Store.copy_of(current), obj)
            if refused:
                raise errors.invalid(rt.kind, name, rt.group, refused)
            meta = obj["metadata"]
        elif subresource == "resize":
            # Only the containers' resources change through /resize (`pod_resize.py`).
            obj, refused = resize_update(Store.copy_of(current), obj)
            if refused:
                raise errors.invalid(rt.kind, name, rt.group, refused)
            meta = obj["metadata"]
        elif subresource == "approval" or (
            subresource == "status" and rt.storage_key == CSR_RESOURCE
        ):
            # A CertificateSigningRequest's approval, or its certificate (`csr.py`).
            change = csr.approval_update if subresource == "approval" else csr.status_update
            obj, refused = change(Store.copy_of(current), obj)
            if refused:
                raise errors.invalid(rt.kind, name, rt.group, refused)
            if self.csr_approval_guard is not None and csr.newly_approved(old, obj):
                self.csr_approval_guard(obj)
            meta = obj["metadata"]
        elif subresource == "status":
            # Only status changes through /status; everything else stays as stored. `obj`
            # is the caller's private copy: when all but its status is as stored (the usual
            # status write), it is used as it is instead of decoding the stored text again.
            status = obj.get("status")
            if not _same_but_status(obj, old):
                obj = Store.copy_of(current)
            if status is None:
                obj.pop("status", None)
            else:
                obj["status"] = status
            meta = obj["metadata"]
        elif "status" in rt.subresources:
            if rt.storage_key == CSR_RESOURCE:
                obj["spec"] = json.loads(json.dumps(old.get("spec") or {}))  # never changes
            if "status" in old:
                obj["status"] = json.loads(json.dumps(old["status"]))
            else:
                obj.pop("status", None)
        for key in _SERVER_SET_METADATA:
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if subresource is None:
            self._default(rt, obj)
            if rt.storage_key == POD_RESOURCE:
                keep_pod_priority(obj, old)
        if subresource is None:
            fixed = immutable_errors(rt.group, rt.kind, old, obj)
            if fixed:
                raise errors.invalid(rt.kind, name, rt.group, fixed)
        spec_changed = subresource in (None, "resize") and obj.get("spec") != old.get("spec")
        if spec_changed and rt.storage_key == POD_RESOURCE and subresource is None:
            self._check_pod_update(rt, old, obj)
        self._validate(rt, obj, strict, warnings, spec_checks=spec_changed)
        if subresource in (None, "ephemeralcontainers"):
            self._admit_pod_security(rt, ns, name, obj, old, warnings)
        if subresource is None and rt.storage_key == PRIORITY_CLASS_RESOURCE:
            check_class(obj, old, self._priority_classes().values())
        if subresource is None and rt.group == RBAC_GROUP and self.rbac_guard is not None:
            self.rbac_guard(rt.kind, rt.plural, obj)
        if rt.namespaced and spec_changed:
            self._admit_quotas(rt, ns, obj, name, old)  # a resize that takes more, too
        if subresource is None and rt.storage_key == SERVICE_RESOURCE:
            self.service_alloc.prepare(obj, old)  # keep, check, allocate (service_alloc.py)
        include_status = "status" not in rt.subresources
        if "generation" in old_meta and _spec_part(obj, include_status) != _spec_part(
            old, include_status
        ):
            meta["generation"] = int(old_meta["generation"]) + 1
        if rt.storage_key == CRD_RESOURCE:
            self._crd_accepted(obj)
        if field_manager is not None and subresource in (None, "status"):
            track_update(
                old,
                obj,
                self._patch_meta(rt),
                manager=field_manager or DEFAULT_FIELD_MANAGER,
                api_version=rt.api_version,
                now=rfc3339(self.clock.now()),
                subresource=tracked_subresource or subresource or "",
            )
        if old_meta.get("deletionTimestamp"):
            # The last finalizer gone (and, for a namespace, its spec.finalizers too): remove.
            blocked = bool(meta.get("finalizers")) or bool(
                rt.storage_key == NAMESPACE_RESOURCE and obj.get("spec", {}).get("finalizers")
            )
            if not blocked and not old_meta.get("deletionGracePeriodSeconds"):
                if dry_run:
                    return obj
                return self._remove(rt, ns, name, current.revision).body
        if _spec_part(obj, True) == _spec_part(old, True) and _meta_equal(meta, old_meta):
            return old  # a no-op write does not bump the revision, as in Kubernetes
        if dry_run:
            meta["resourceVersion"] = old_meta.get("resourceVersion", "")
            return obj
        try:
            stored = self.store.update(rt.storage_key, ns, name, obj, current.revision)
        except store_errors.StoreError as e:
            raise errors.from_store_error(e, rt.plural, name, rt.group) from e
        self._after_write(rt, stored.body)
        return stored.body

    def applied_patch(
        self, rt: ResourceType, name: str, doc: JSONDict, content_type: str, patch: object
    ) -> JSONDict:
        """`patch` (JSON, merge or strategic merge, by `content_type`) applied to `doc` as
        `rt` is patched; the Status errors the apiserver gives for a patch that cannot be.
        Also serves versions converted at the edge (`converted.py`), which patch the object
        as seen in the requested version."""
        try:
            if content_type == PATCH_JSON:
                if not isinstance(patch, list):
                    raise errors.bad_request("a json patch must be a JSON array of operations")
                result = apply_json_patch(doc, patch)
            elif content_type == PATCH_MERGE:
                result = apply_merge_patch(doc, patch)
            elif content_type == PATCH_STRATEGIC:
                if rt.definition is None:
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        f"the body of the request was in an unknown format - accepted media "
                        f"types include: {PATCH_JSON}, {PATCH_MERGE}, application/apply-patch+yaml",
                    )
                if not isinstance(patch, dict):
                    raise errors.bad_request("a strategic merge patch must be a JSON object")
                meta_info = PatchMeta.for_definition(self.defs, rt.definition)
                result = apply_strategic_merge_patch(doc, patch, meta_info)
            else:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {PATCH_JSON}, {PATCH_MERGE}, {PATCH_STRATEGIC}",
                )
        except PatchTestFailedError as e:
            raise errors.invalid(rt.kind, name, rt.group, [Cause("", str(e))]) from e
        except PatchError as e:
            raise ApiError(
                422, "Invalid", f"the patch could not be applied: {e}", rt.kind, name, rt.group
            ) from e
        if not isinstance(result, dict):
            raise errors.bad_request("the patched object is not a JSON object")
        return result

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        patch: object,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        strict: bool = True,
        warnings: StrList | None = None,
        field_manager: str = "",
    ) -> JSONDict:
        ns = namespace if rt.namespaced else ""
        current = self._current(rt, ns, name)
        result = self.applied_patch(rt, name, Store.copy_of(current), content_type, patch)
        result_meta = result.setdefault("metadata", {})
        if not isinstance(result_meta, dict):
            raise errors.bad_request("metadata must be an object")
        wanted = result_meta.get("resourceVersion")
        if wanted and str(wanted) != str(current.revision):
            raise errors.conflict(
                rt.plural,
                name,
                rt.group,
                "the object has been modified; please apply your changes to the latest version "
                "and try again",
            )
        if result_meta.get("name", name) != name:
            raise errors.bad_request("metadata.name cannot be changed by a patch")
        result_meta["name"] = name
        obj = self._check_envelope(rt, result, namespace)
        return self._commit_update(
            rt, ns, name, current, obj, subresource, dry_run, strict, warnings, field_manager
        )

    def apply(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: object,
        *,
        field_manager: str,
        force: bool = False,
        dry_run: bool = False,
        strict: bool = True,
        warnings: StrList | None = None,
    ) -> JSONDict:
        """Server-side apply (`merge/server_side_apply.py`): create the object from `body`
        or merge it into the live one by field ownership; 409 naming each conflict."""
        if not field_manager:
            raise errors.bad_request("fieldManager is required for apply requests")
        applied = self._check_envelope(rt, body, namespace)
        _name_from_url(applied, name)
        meta = applied["metadata"]
        for key in (*_SERVER_SET_METADATA, "resourceVersion", "managedFields"):
            meta.pop(key, None)
        if "status" in rt.subresources:
            applied.pop("status", None)  # the status is the status subresource's
        ns = namespace if rt.namespaced else ""
        current = self.store.find(rt.storage_key, ns, name)
        now = rfc3339(self.clock.now())
        try:
            result = server_side_apply(
                None if current is None else Store.copy_of(current),
                applied,
                self._patch_meta(rt),
                manager=field_manager,
                api_version=rt.api_version,
                now=now,
                force=force,
            )
        except ApplyConflictError as e:
            raise ApiError(
                409,
                "Conflict",
                str(e),
                rt.kind,
                name,
                rt.group,
                [Cause(c.field, c.owner, "FieldManagerConflict") for c in e.conflicts],
            ) from e
        if current is None:
            managed = result["metadata"].pop("managedFields", None)
            return self.create(
                rt,
                namespace,
                result,
                dry_run=dry_run,
                strict=strict,
                warnings=warnings,
                managed_fields=managed,
            )
        obj = self._check_envelope(rt, result, namespace)
        return self._commit_update(
            rt, ns, name, current, obj, None, dry_run, strict, warnings, None
        )

    def _patch_meta(self, rt: ResourceType) -> PatchMeta:
        if rt.definition is None:
            return PatchMeta.empty()
        return PatchMeta.for_definition(self.defs, rt.definition)

    # -- delete ----------------------------------------------------------------------

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        *,
        propagation: str | None = None,
        preconditions: JSONDict | None = None,
        grace_period: int | None = None,
        dry_run: bool = False,
    ) -> DeleteResult:
        ns = namespace if rt.namespaced else ""
        current = self._current(rt, ns, name)
        if rt.storage_key == PRIORITY_CLASS_RESOURCE:
            check_class_delete(name)
        old_meta = current.body.get("metadata", {})
        preconditions = preconditions or {}
        if preconditions.get("uid") and preconditions["uid"] != old_meta.get("uid"):
            raise errors.conflict(
                rt.plural,
                name,
                rt.group,
                f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                f"UID in object meta: {old_meta.get('uid')}",
            )
        if preconditions.get("resourceVersion") and str(preconditions["resourceVersion"]) != str(
            current.revision
        ):
            raise errors.conflict(
                rt.plural,
                name,
                rt.group,
                "Precondition failed: ResourceVersion in precondition: "
                f"{preconditions['resourceVersion']}, ResourceVersion in object meta: "
                f"{current.revision}",
            )
        if propagation not in (None, "Background", "Foreground", "Orphan"):
            raise errors.bad_request(f"unsupported propagationPolicy {propagation!r}")
        obj = Store.copy_of(current)
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if propagation == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if propagation == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        grace = self._grace_period(rt, obj, grace_period)
        if rt.storage_key == NAMESPACE_RESOURCE:
            finalizers_spec = obj.get("spec", {}).get("finalizers") or []
            if finalizers_spec:
                obj.setdefault("status", {})["phase"] = "Terminating"
                finalizers = finalizers or []
                grace = 0
                return self._mark_deleting(
                    rt, ns, name, current, obj, finalizers, grace, dry_run, force=True
                )
        if finalizers or grace > 0:
            return self._mark_deleting(rt, ns, name, current, obj, finalizers, grace, dry_run)
        if dry_run:
            return DeleteResult(current.body, True)
        return DeleteResult(self._remove(rt, ns, name, current.revision).body, True)

    def _grace_period(self, rt: ResourceType, obj: JSONDict, requested: int | None) -> int:
        """Only pods bound to a node wait for their containers to stop."""
        if rt.storage_key != POD_RESOURCE or not obj.get("spec", {}).get("nodeName"):
            return 0
        if requested is not None:
            return max(0, requested)
        return int(obj.get("spec", {}).get("terminationGracePeriodSeconds", 30))

    def _mark_deleting(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        current: Stored,
        obj: JSONDict,
        finalizers: StrList,
        grace: int,
        dry_run: bool,
        force: bool = False,
    ) -> DeleteResult:
        meta = obj["metadata"]
        changed = force or finalizers != (meta.get("finalizers") or [])
        if not meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = rfc3339(self.clock.now() + timedelta(seconds=grace))
            meta["deletionGracePeriodSeconds"] = grace
            changed = True
        elif grace < int(meta.get("deletionGracePeriodSeconds") or 0):
            meta["deletionGracePeriodSeconds"] = grace  # a shorter grace period wins
            changed = True
        if finalizers:
            meta["finalizers"] = finalizers
        if not finalizers and grace == 0 and not force:
            if dry_run:
                return DeleteResult(current.body, True)
            return DeleteResult(self._remove(rt, ns, name, current.revision).body, True)
        if dry_run or not changed:
            return DeleteResult(obj if dry_run else current.body, False)
        stored = self.store.update(rt.storage_key, ns, name, obj, current.revision)
        self._after_write(rt, stored.body)
        return DeleteResult(stored.body, False)

    def _remove(self, rt: ResourceType, ns: str, name: str, revision: int) -> Stored:
        try:
            stored = self.store.delete(rt.storage_key, ns, name, revision)
        except store_errors.StoreError as e:
            raise errors.from_store_error(e, rt.plural, name, rt.group) from e
        if rt.storage_key == CRD_RESOURCE:
            self.registry.remove_crd(name)
            self._crd_validators.clear()
        return stored

    def finalize_removal(self, rt: ResourceType, ns: str, name: str) -> None:
        """Used by the garbage collector and namespace controller: delete once unblocked."""
        found = self.store.find(rt.storage_key, ns, name)
        if found is not None:
            self._remove(rt, ns, name, found.revision)

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        selection: Selection,
        *,
        propagation: str | None = None,
        dry_run: bool = False,
    ) -> JSONList:
        out = []
        for obj in self.list(rt, namespace, selection).items:
            meta = obj["metadata"]
            try:
                result = self.delete(
                    rt,
                    meta.get("namespace", ""),
                    meta["name"],
                    propagation=propagation,
                    dry_run=dry_run,
                )
            except ApiError as e:
                if e.code == 404:
                    continue
                raise
            out.append(result.object)
        return out

    # -- scale subresource -----------------------------------------------------------

    def get_scale(self, rt: ResourceType, namespace: str, name: str) -> JSONDict:
        obj = self.get(rt, namespace, name)
        return _scale_of(obj)

    def update_scale(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        scale: object,
        dry_run: bool = False,
        field_manager: str = "",
    ) -> JSONDict:
        if not isinstance(scale, dict) or not isinstance(
            scale.get("spec", {}).get("replicas"), int
        ):
            raise errors.invalid(
                "Scale",
                name,
                "autoscaling",
                [Cause("spec.replicas", "Required value: an integer replica count is required")],
            )
        replicas = scale["spec"]["replicas"]
        if replicas < 0:
            raise errors.invalid(
                "Scale",
                name,
                "autoscaling",
                [
                    Cause(
                        "spec.replicas",
                        f"Invalid value: {replicas}: must be greater than or equal to 0",
                    )
                ],
            )
        ns = namespace if rt.namespaced else ""
        current = self._current(rt, ns, name)
        wanted = scale.get("metadata", {}).get("resourceVersion")
        if wanted and str(wanted) != str(current.revision):
            raise errors.conflict(rt.plural, name, rt.group, "the object has been modified")
        obj = Store.copy_of(current)
        obj.setdefault("spec", {})["replicas"] = replicas
        result = self._commit_update(
            rt, ns, name, current, obj, None, dry_run, False, None, field_manager, "scale"
        )
        return _scale_of(result)

    def patch_scale(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        patch: object,
        dry_run: bool = False,
        field_manager: str = "",
    ) -> JSONDict:
        scale = self.get_scale(rt, namespace, name)
        try:
            if content_type == PATCH_JSON and isinstance(patch, list):
                patched = apply_json_patch(scale, patch)
            else:
                patched = apply_merge_patch(scale, patch)
        except PatchError as e:
            raise ApiError(422, "Invalid", f"the patch could not be applied: {e}") from e
        return self.update_scale(rt, namespace, name, patched, dry_run, field_manager)

    # -- hooks -----------------------------------------------------------------------

    def _after_write(self, rt: ResourceType, obj: JSONDict) -> None:
        if rt.storage_key == CRD_RESOURCE:
            self.registry.set_crd(obj)
            self._crd_validators.clear()

    @staticmethod
    def _crd_accepted(crd: JSONDict) -> None:
        """CRDs are established at once: there is no separate naming controller to wait for."""
        names = crd.get("spec", {}).get("names", {})
        status = crd.setdefault("status", {})
        status["acceptedNames"] = names
        status["storedVersions"] = [
            v["name"] for v in crd.get("spec", {}).get("versions", []) if v.get("storage")
        ]
        status["conditions"] = [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": crd["metadata"].get("creationTimestamp", ""),
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": crd["metadata"].get("creationTimestamp", ""),
            },
        ]


def _name_from_url(obj: JSONDict, name: str) -> None:
    """A body written to a named URL is that object: its own name may only repeat it."""
    if obj["metadata"].get("name") not in (None, name):
        raise errors.bad_request(
            f"the name of the object ({obj['metadata'].get('name')}) does not match the "
            f"name on the URL ({name})"
        )
    obj["metadata"]["name"] = name


def _same_but_status(a: JSONDict, b: JSONDict) -> bool:
    keys = (a.keys() | b.keys()) - {"status"}
    return all(k in a and k in b and a[k] == b[k] for k in keys)


def _meta_equal(a: JSONDict, b: JSONDict) -> bool:
    skip = {"resourceVersion", "managedFields"}
    return {k: v for k, v in a.items() if k not in skip} == {
        k: v for k, v in b.items() if k not in skip
    }


def _scale_of(obj: JSONDict) -> JSONDict:
    meta = obj.get("metadata", {})
    spec = obj.get("spec", {})
    status = obj.get("status", {})
    selector = spec.get("selector", {})
    if obj.get("kind") == "ReplicationController":
        # a plain map of labels (`app: web`), not a LabelSelector: upstream's
        # SelectorFromSet(rc.Spec.Selector)
        selector = {"matchLabels": selector}
    selector_text = ""
    if isinstance(selector, dict):
        from reconciler.selectors import label_selector_from_spec, selector_to_string

        try:
            selector_text = selector_to_string(label_selector_from_spec(selector))
        except SelectorError:
            selector_text = ""
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {"replicas": status.get("replicas", 0), "selector": selector_text},
    }
