"""The OpenAPI v3 documents the API server publishes under `/openapi/v3`, built from the schemas.

kubectl reads these documents for three decisions, and each shapes what is produced here:

- **server-side field validation** (`kubectl apply/create/replace`, default `--validate=strict`):
  cli-runtime's `queryParamVerifierV3` fetches the group/version document, takes the *first*
  PATCH operation (Go map order, so effectively any of them) whose
  `x-kubernetes-group-version-kind` *object* equals the kind, and looks for an inline query
  parameter named `fieldValidation` among that operation's own `parameters`. Every PATCH
  operation of a kind (main resource and `/status`) therefore lists it. If the check fails,
  kubectl falls back to client-side validation against `/openapi/v2`, which we do not serve, and
  the command fails.
- **strategic merge patch** (`kubectl apply`, `kubectl diff`): the PATCH operation's
  `requestBody.content` must list `application/strategic-merge-patch+json` (built-in kinds only;
  custom resources list JSON and merge patch, so kubectl sends a JSON merge patch), and the
  component schema whose `x-kubernetes-group-version-kind` *list* contains the kind supplies
  `x-kubernetes-patch-merge-key` / `-strategy`, following `$ref` and single-element `allOf`.
- **`kubectl explain`**: finds the kind's operations under `/apis/G/V/[namespaces/{namespace}/]R`
  (or `/{name}`) and then the component with the same GVK, walking `$ref`, `allOf`, `items` and
  `additionalProperties`.

The schemas come from `reconciler.schema.definitions` (draft 2020-12, `#/$defs/<name>` refs, types
such as `["string", "null"]`) and are converted to OpenAPI 3.0 form: refs point to
`#/components/schemas/<name>` (wrapped in `allOf` when they carry siblings, as OpenAPI 3.0 ignores
siblings of `$ref`), type arrays collapse to their non-null member, `x-kubernetes-*` extensions are
kept. Each document holds only the components reachable from its group/version's operations.
Custom resources contribute their CRD's `openAPIV3Schema`, named like the real API server does
(`com.example.stable.v1.CronTab` for group `stable.example.com`).

Documents are pure data, cached per index key, and rebuilt only for the group/versions whose
served types changed when the registry's `generation` moves (CRDs come and go). `serialized()`
gives the exact bytes and their hash (SHA-512, hex), which is also the `hash` in the index URL,
so the HTTP handler can serve `ETag`s and immutable caching as the real server does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.apiserver.resources import ResourceRegistry, ResourceType
from reconciler.schema.definitions import Definitions

__all__ = ["OpenAPIV3", "convert_schema", "crd_component_name", "index_path_key"]

JSONDict = dict[str, Any]

_DEFS_REF = "#/$defs/"
_COMPONENTS_REF = "#/components/schemas/"

_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
OBJECT_META = _META + "ObjectMeta"
LIST_META = _META + "ListMeta"
STATUS = _META + "Status"
DELETE_OPTIONS = _META + "DeleteOptions"
PATCH = _META + "Patch"
API_RESOURCE_LIST = _META + "APIResourceList"
API_VERSIONS = _META + "APIVersions"
API_GROUP_LIST = _META + "APIGroupList"
API_GROUP = _META + "APIGroup"
SCALE = "io.k8s.api.autoscaling.v1.Scale"
_SCALE_GVK = {"group": "autoscaling", "kind": "Scale", "version": "v1"}

# What the server answers in; also what a custom resource's POST/PUT accepts.
_RESPONSE_TYPES = ("application/json", "application/yaml")
_WATCH_TYPES = ("application/json;stream=watch",)
# PATCH content types. Strategic merge patch exists for built-in kinds only, as upstream:
# kubectl keys its choice of patch type on its presence.
_BUILTIN_PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
_CUSTOM_PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
)

_TYPE_META_DOC = {
    "apiVersion": "APIVersion defines the versioned schema of this representation of an object.",
    "kind": "Kind is a string value representing the REST resource this object represents.",
}

# Query parameters: name -> (schema type, description).
_QUERY: dict[str, tuple[str, str]] = {
    "allowWatchBookmarks": ("boolean", "Ask for BOOKMARK events on a watch."),
    "continue": ("string", "The continue token of a previous, paginated list call."),
    "dryRun": ("string", "`All` processes the request fully but persists nothing."),
    "fieldManager": ("string", "The name of the actor making the change."),
    "fieldSelector": ("string", "Restrict the returned objects by their fields."),
    "fieldValidation": (
        "string",
        "How to treat unknown or duplicate fields in the request body: `Ignore`, `Warn` "
        "(the default) or `Strict` (reject the request).",
    ),
    "force": ("boolean", "Take over fields owned by other managers (apply patches only)."),
    "gracePeriodSeconds": ("integer", "Seconds before the object is deleted; 0 is immediate."),
    "labelSelector": ("string", "Restrict the returned objects by their labels."),
    "limit": ("integer", "The maximum number of objects to return; use `continue` for more."),
    "orphanDependents": ("boolean", "Deprecated: use propagationPolicy."),
    "pretty": ("string", "If 'true', the output is pretty printed."),
    "propagationPolicy": (
        "string",
        "Garbage collection of dependents: `Orphan`, `Background` or `Foreground`.",
    ),
    "resourceVersion": ("string", "Constrain which resource version the request is served at."),
    "resourceVersionMatch": ("string", "How resourceVersion applies to a list call."),
    "sendInitialEvents": ("boolean", "Start a watch with synthetic events for current objects."),
    "timeoutSeconds": ("integer", "Time limit of a list or watch call."),
    "watch": ("boolean", "Watch for changes instead of listing."),
}

_LIST_PARAMS = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
_PATCH_PARAMS = (*_WRITE_PARAMS, "force")
_DELETE_PARAMS = ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy")
_DELETE_COLLECTION_PARAMS = (
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
)


def index_path_key(group: str, version: str) -> str:
    """The key of a group/version in the `/openapi/v3` index: `api/v1`, `apis/apps/v1`."""
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def crd_component_name(group: str, version: str, kind: str) -> str:
    """The component name of a custom kind: the group reversed, e.g. `com.example.v1.Widget`."""
    return ".".join([*reversed(group.split(".")), version, kind])


# --- schema conversion (pure) ---------------------------------------------------------------


def convert_schema(schema: JSONDict, refs: set[str] | None = None) -> JSONDict:
    """A draft 2020-12 schema from the definitions, in OpenAPI 3.0 form (a new object).

    The names of the definitions it references are added to `refs` when given.
    """
    found: set[str] = set() if refs is None else refs
    return _convert(schema, found)


def _convert(node: JSONDict, refs: set[str]) -> JSONDict:
    out: JSONDict = {}
    target: str | None = None
    for key, value in node.items():
        if key in ("$schema", "$id", "$defs", "$comment", "$anchor"):
            continue
        if key == "$ref" and isinstance(value, str):
            target = value[len(_DEFS_REF) :] if value.startswith(_DEFS_REF) else value
            continue
        if key.startswith("x-"):
            out[key] = copy.deepcopy(value)
        elif key == "type":
            single = _single_type(value)
            if single is not None:
                out["type"] = single
        elif key in ("properties", "patternProperties") and isinstance(value, dict):
            out[key] = {name: _convert(sub, refs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _convert(value, refs)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [_convert(sub, refs) for sub in value]
        elif key == "const":
            out["enum"] = [copy.deepcopy(value)]
        else:
            out[key] = copy.deepcopy(value)
    if target is None:
        return out
    refs.add(target)
    ref = {"$ref": _COMPONENTS_REF + target}
    return {"allOf": [ref], **out} if out else ref


def _single_type(value: Any) -> str | None:
    """`["string", "null"]` -> `"string"`; a bare type unchanged; `null` alone -> None."""
    if isinstance(value, str):
        return None if value == "null" else value
    if isinstance(value, list):
        concrete = [t for t in value if t != "null"]
        if len(concrete) == 1 and isinstance(concrete[0], str):
            return concrete[0]
    return None


def _builtin_component(name: str, schema: JSONDict, refs: set[str]) -> JSONDict:
    out = convert_schema(schema, refs)
    if "x-kubernetes-group-version-kind" in out:
        # The packaged schemas pin apiVersion/kind with an enum; the real API does not, and
        # kubectl explain would print it as if it were a choice.
        for prop in ("apiVersion", "kind"):
            sub = out.get("properties", {}).get(prop)
            if isinstance(sub, dict):
                sub.pop("enum", None)
    return out


def _crd_component(t: ResourceType) -> JSONDict:
    """The CRD's openAPIV3Schema as a kind schema: typed, with TypeMeta, ObjectMeta and GVK."""
    schema = copy.deepcopy(t.crd_schema or {})
    schema["type"] = "object"
    _set_object_meta(schema)
    _add_embedded_meta(schema)
    schema["x-kubernetes-group-version-kind"] = [_gvk(t.group, t.version, t.kind)]
    return schema


def _set_object_meta(schema: JSONDict) -> None:
    props = schema.setdefault("properties", {})
    for prop, doc in _TYPE_META_DOC.items():
        props[prop] = {"description": doc, "type": "string"}
    props["metadata"] = {
        "allOf": [{"$ref": _COMPONENTS_REF + OBJECT_META}],
        "description": "Standard object's metadata.",
    }


def _add_embedded_meta(node: JSONDict) -> None:
    """Nested `x-kubernetes-embedded-resource` objects are objects too: give them TypeMeta."""
    for sub in (node.get("properties") or {}).values():
        if isinstance(sub, dict):
            _add_embedded_meta(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _add_embedded_meta(node[key])
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(key) or ():
            if isinstance(sub, dict):
                _add_embedded_meta(sub)
    if node.get("x-kubernetes-embedded-resource") is True:
        _set_object_meta(node)
        required = node.setdefault("required", [])
        required.extend(k for k in ("apiVersion", "kind") if k not in required)


def _list_component(t: ResourceType, item_name: str) -> JSONDict:
    """A `<Kind>List` schema for kinds whose definitions bring none (custom resources)."""
    return {
        "description": f"{t.list_kind} is a list of {t.kind}",
        "properties": {
            "apiVersion": {"description": _TYPE_META_DOC["apiVersion"], "type": "string"},
            "items": {
                "description": f"List of {t.plural}.",
                "items": {"$ref": _COMPONENTS_REF + item_name},
                "type": "array",
            },
            "kind": {"description": _TYPE_META_DOC["kind"], "type": "string"},
            "metadata": {
                "allOf": [{"$ref": _COMPONENTS_REF + LIST_META}],
                "description": "Standard list metadata.",
            },
        },
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": [_gvk(t.group, t.version, t.list_kind)],
    }


def _collect_refs(node: Any, refs: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_COMPONENTS_REF):
                refs.add(value[len(_COMPONENTS_REF) :])
            elif not key.startswith("x-"):
                _collect_refs(value, refs)
    elif isinstance(node, list):
        for item in node:
            _collect_refs(item, refs)


# --- operations (pure) ----------------------------------------------------------------------


def _gvk(group: str, version: str, kind: str) -> JSONDict:
    return {"group": group, "kind": kind, "version": version}


def _ref(name: str) -> JSONDict:
    return {"$ref": _COMPONENTS_REF + name}


def _content(schema_name: str, types: Iterable[str]) -> JSONDict:
    return {t: {"schema": _ref(schema_name)} for t in types}


def _query(names: Iterable[str]) -> list[JSONDict]:
    return [
        {"description": _QUERY[n][1], "in": "query", "name": n, "schema": {"type": _QUERY[n][0]}}
        for n in names
    ]


def _path_params(kind: str, namespaced: bool, named: bool) -> list[JSONDict]:
    params = []
    if named:
        params.append(_path_param("name", f"name of the {kind}"))
    if namespaced:
        params.append(_path_param("namespace", "object name and auth scope"))
    return [*params, *_query(["pretty"])]


def _path_param(name: str, description: str) -> JSONDict:
    return {
        "description": description,
        "in": "path",
        "name": name,
        "required": True,
        "schema": {"type": "string"},
    }


def _tokens(group: str, version: str) -> tuple[str, str]:
    """Operation-id and tag fragments: ("AppsV1", "apps_v1"), ("RbacAuthorizationV1", ...)."""
    name = group.removesuffix(".k8s.io") if group else "core"
    word = "".join(part[:1].upper() + part[1:] for part in name.replace("-", ".").split("."))
    tag = word[:1].lower() + word[1:]
    if not version:
        return word, tag
    return word + version[:1].upper() + version[1:], f"{tag}_{version}"


# Placeholders in the operation tables, resolved per resource type.
_KIND = "<kind>"
_LIST = "<list>"
_CODES = {"200": "OK", "201": "Created", "202": "Accepted"}


@dataclass(frozen=True)
class _Op:
    """One operation of a resource path, enabled by one of the type's verbs."""

    verb: str  # the ResourceType verb that enables it
    method: str
    action: str  # x-kubernetes-action
    id_verb: str  # operation-id prefix
    description: str  # with {kind} and {sub} placeholders
    params: tuple[str, ...]
    body: str | None  # request body component
    response: str
    codes: tuple[str, ...]


# fmt: off
_COLLECTION_OPS = (
    _Op("list", "get", "list", "list", "list or watch objects of kind {kind}", _LIST_PARAMS,
        None, _LIST, ("200",)),
    _Op("create", "post", "post", "create", "create a {kind}", _WRITE_PARAMS,
        _KIND, _KIND, ("200", "201", "202")),
    _Op("deletecollection", "delete", "deletecollection", "deleteCollection",
        "delete collection of {kind}", _DELETE_COLLECTION_PARAMS, DELETE_OPTIONS, STATUS, ("200",)),
)
_ITEM_OPS = (
    _Op("get", "get", "get", "read", "read the specified {kind}", (), None, _KIND, ("200",)),
    _Op("update", "put", "put", "replace", "replace the specified {kind}", _WRITE_PARAMS,
        _KIND, _KIND, ("200", "201")),
    _Op("patch", "patch", "patch", "patch", "partially update the specified {kind}", _PATCH_PARAMS,
        PATCH, _KIND, ("200", "201")),
    _Op("delete", "delete", "delete", "delete", "delete a {kind}", _DELETE_PARAMS,
        DELETE_OPTIONS, STATUS, ("200", "202")),
)
_SUBRESOURCE_OPS = (
    _Op("get", "get", "get", "read", "read {sub} of the specified {kind}", (), None, _KIND,
        ("200",)),
    _Op("update", "put", "put", "replace", "replace {sub} of the specified {kind}", _WRITE_PARAMS,
        _KIND, _KIND, ("200", "201")),
    _Op("patch", "patch", "patch", "patch", "partially update {sub} of the specified {kind}",
        _PATCH_PARAMS, PATCH, _KIND, ("200", "201")),
)
# fmt: on


def _operation(
    t: ResourceType, op: _Op, shape: str, kind_schema: str, list_schema: str
) -> JSONDict:
    """One operation object; `shape` is collection, all (all namespaces), item, status or scale."""
    word, tag = _tokens(t.group, t.version)
    scope = "Namespaced" if t.namespaced and shape != "all" else ""
    suffix = {"status": "Status", "scale": "Scale", "all": "ForAllNamespaces"}.get(shape, "")
    id_verb = op.id_verb
    if id_verb == "deleteCollection":
        id_verb, word = "delete", word + "Collection"
    if shape == "scale":
        kind_schema = SCALE
    resolve = {_KIND: kind_schema, _LIST: list_schema}
    response = resolve.get(op.response, op.response)
    response_types = (*_RESPONSE_TYPES, *_WATCH_TYPES) if op.action == "list" else _RESPONSE_TYPES
    responses: JSONDict = {
        code: {"content": _content(response, response_types), "description": _CODES[code]}
        for code in op.codes
    }
    responses["401"] = {"description": "Unauthorized"}
    out: JSONDict = {
        "description": op.description.format(kind=t.kind, sub=shape),
        "operationId": f"{id_verb}{word}{scope}{t.kind}{suffix}",
        "responses": responses,
        "tags": [tag],
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": (
            dict(_SCALE_GVK) if shape == "scale" else _gvk(t.group, t.version, t.kind)
        ),
    }
    if op.params:
        out["parameters"] = _query(op.params)
    if op.body is not None:
        if op.method == "patch":
            body_types: tuple[str, ...] = (
                _CUSTOM_PATCH_TYPES if t.is_custom else _BUILTIN_PATCH_TYPES
            )
        else:
            body_types = ("*/*",)
        out["requestBody"] = {
            "content": _content(resolve.get(op.body, op.body), body_types),
            "required": op.method != "delete",
        }
    return out


def _resource_paths(t: ResourceType, kind_schema: str, list_schema: str) -> dict[str, JSONDict]:
    """Every path of one resource type with the operations its verbs and subresources allow."""
    prefix = t.path_prefix()
    collection = (
        f"{prefix}/namespaces/{{namespace}}/{t.plural}" if t.namespaced else f"{prefix}/{t.plural}"
    )
    shapes: list[tuple[str, str, tuple[_Op, ...]]] = [
        ("collection", collection, _COLLECTION_OPS),
        ("item", f"{collection}/{{name}}", _ITEM_OPS),
    ]
    if t.namespaced:
        list_only = tuple(op for op in _COLLECTION_OPS if op.verb == "list")
        shapes.append(("all", f"{prefix}/{t.plural}", list_only))
    for sub in sorted(t.subresources & {"status", "scale"}):
        shapes.append((sub, f"{collection}/{{name}}/{sub}", _SUBRESOURCE_OPS))
    verbs = set(t.verbs)
    paths: dict[str, JSONDict] = {}
    for shape, url, ops in shapes:
        enabled = [op for op in ops if op.verb in verbs]
        if not enabled:
            continue
        named = shape not in ("collection", "all")
        kind = "Scale" if shape == "scale" else t.kind
        item: JSONDict = {"parameters": _path_params(kind, t.namespaced and shape != "all", named)}
        for op in enabled:
            item[op.method] = _operation(t, op, shape, kind_schema, list_schema)
        paths[url] = item
    return paths


def _discovery_path(url: str, operation_id: str, tag: str, schema: str, what: str) -> JSONDict:
    return {
        url: {
            "get": {
                "description": f"get {what}",
                "operationId": operation_id,
                "responses": {
                    "200": {"content": _content(schema, _RESPONSE_TYPES), "description": "OK"},
                    "401": {"description": "Unauthorized"},
                },
                "tags": [tag],
            }
        }
    }


# --- documents and their cache --------------------------------------------------------------


@dataclass(frozen=True)
class _Rendered:
    """Only the serialized bytes are kept: the documents are large and rarely re-read."""

    body: bytes
    etag: str


def _serialize(document: JSONDict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


class OpenAPIV3:
    """The `/openapi/v3` index and per-group/version documents for a registry's served types.

    Returned documents are shared, cached objects: callers must not modify them.
    """

    def __init__(self, defs: Definitions, registry: ResourceRegistry) -> None:
        self._defs = defs
        self._registry = registry
        self._lock = threading.RLock()
        self._components: dict[str, tuple[JSONDict, frozenset[str]]] = {}
        self._generation: int | None = None
        self._plan: dict[str, Hashable] = {}  # index key -> fingerprint of what it documents
        self._rendered: dict[str, _Rendered] = {}

    # public API

    def index(self) -> JSONDict:
        """The `/openapi/v3` discovery document: every index key with its hashed URL."""
        with self._lock:
            self._sync()
            return {
                "paths": {
                    key: {"serverRelativeURL": self._url(key, self._render(key).etag)}
                    for key in sorted(self._plan)
                }
            }

    def index_serialized(self) -> tuple[bytes, str]:
        """The index as served (compact JSON) and its hash, for an `ETag`."""
        body = _serialize(self.index())
        return body, _hash(body)

    def document(self, group: str, version: str) -> JSONDict | None:
        """The OpenAPI document of one served group/version (`""` is the core group)."""
        return self.document_for_path(index_path_key(group, version))

    def document_for_path(self, key: str) -> JSONDict | None:
        """The document behind an index key (`api/v1`, `apis/apps/v1`, `apis`, `api`, ...)."""
        rendered = self._rendered_for(key)
        return None if rendered is None else json.loads(rendered.body)

    def serialized(self, key: str) -> tuple[bytes, str] | None:
        """The exact bytes to serve for an index key, and their hash (the URL's `hash`)."""
        rendered = self._rendered_for(key)
        return None if rendered is None else (rendered.body, rendered.etag)

    def server_relative_url(self, key: str) -> str | None:
        """`/openapi/v3/<key>?hash=<hash>`: where a stale `hash` should be redirected to."""
        rendered = self._rendered_for(key)
        return None if rendered is None else self._url(key, rendered.etag)

    # cache

    def _rendered_for(self, key: str) -> _Rendered | None:
        key = key.strip("/")
        with self._lock:
            self._sync()
            if key not in self._plan:
                return None
            return self._render(key)

    @staticmethod
    def _url(key: str, etag: str) -> str:
        return f"/openapi/v3/{key}?hash={etag}"

    def _sync(self) -> None:
        """Re-plan after the registry changed; keep documents whose inputs are unchanged."""
        generation = self._registry.generation
        if generation == self._generation:
            return
        by_key: dict[str, list[ResourceType]] = {}
        for t in self._registry.all():
            by_key.setdefault(index_path_key(t.group, t.version), []).append(t)
        plan: dict[str, Hashable] = {"api": (), "apis": ()}
        for key, types in by_key.items():
            plan[key] = tuple(sorted((_fingerprint(t) for t in types), key=repr))
            group = types[0].group
            if group:
                plan[f"apis/{group}"] = ()
        self._rendered = {
            key: rendered
            for key, rendered in self._rendered.items()
            if key in plan and plan[key] == self._plan.get(key)
        }
        self._plan = plan
        self._generation = generation

    def _render(self, key: str) -> _Rendered:
        rendered = self._rendered.get(key)
        if rendered is None:
            document = self._build(key)
            body = _serialize(document)
            rendered = _Rendered(body, _hash(body))
            self._rendered[key] = rendered
        return rendered

    # building

    def _build(self, key: str) -> JSONDict:
        parts = key.split("/")
        if key == "api":
            paths = _discovery_path(
                "/api/", "getCoreAPIVersions", "core", API_VERSIONS, "available API versions"
            )
            return self._document(paths, {})
        if key == "apis":
            paths = _discovery_path(
                "/apis/", "getAPIVersions", "apis", API_GROUP_LIST, "available API versions"
            )
            return self._document(paths, {})
        if len(parts) == 2 and parts[0] == "apis":
            word, tag = _tokens(parts[1], "")
            paths = _discovery_path(
                f"/apis/{parts[1]}/", f"get{word}APIGroup", tag, API_GROUP, "information of a group"
            )
            return self._document(paths, {})
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        return self._group_version_document(group, version)

    def _group_version_document(self, group: str, version: str) -> JSONDict:
        types = self._registry.in_group_version(group, version)
        word, tag = _tokens(group, version)
        prefix = f"/api/{version}" if not group else f"/apis/{group}/{version}"
        paths = _discovery_path(
            f"{prefix}/", f"get{word}APIResources", tag, API_RESOURCE_LIST, "available resources"
        )
        local: dict[str, JSONDict] = {}
        for t in types:
            kind_schema, list_schema = self._kind_components(t, local)
            paths.update(_resource_paths(t, kind_schema, list_schema))
        return self._document(paths, local)

    def _kind_components(self, t: ResourceType, local: dict[str, JSONDict]) -> tuple[str, str]:
        """Component names of a type and its list; custom ones are added to `local`."""
        if t.definition is not None and not t.is_custom:
            list_name = t.definition + "List"
            if list_name not in self._defs.defs:
                local[list_name] = _list_component(t, t.definition)
            return t.definition, list_name
        name = crd_component_name(t.group, t.version, t.kind)
        local[name] = _crd_component(t)
        local[name + "List"] = _list_component(t, name)
        return name, name + "List"

    def _document(self, paths: JSONDict, local: dict[str, JSONDict]) -> JSONDict:
        """Wrap paths with every component they reach, built-in or `local`."""
        schemas: dict[str, JSONDict] = {}
        pending: set[str] = set()
        _collect_refs(paths, pending)
        while pending:
            name = pending.pop()
            if name in schemas:
                continue
            if name in local:
                schema = local[name]
                refs: set[str] = set()
                _collect_refs(schema, refs)
            elif name in self._defs.defs:
                schema, frozen = self._builtin(name)
                refs = set(frozen)
            else:
                continue  # a dangling ref in the source; the tests guard against it
            schemas[name] = schema
            pending |= refs - schemas.keys()
        return {
            "components": {
                "schemas": dict(sorted(schemas.items())),
                "securitySchemes": {
                    "BearerToken": {
                        "description": "Bearer Token authentication",
                        "in": "header",
                        "name": "authorization",
                        "type": "apiKey",
                    }
                },
            },
            "info": {"title": "Kubernetes", "version": f"v{self._defs.version}"},
            "openapi": "3.0.0",
            "paths": dict(sorted(paths.items())),
            "security": [{"BearerToken": []}],
        }

    def _builtin(self, name: str) -> tuple[JSONDict, frozenset[str]]:
        cached = self._components.get(name)
        if cached is None:
            refs: set[str] = set()
            cached = (_builtin_component(name, self._defs.get(name), refs), frozenset(refs))
            self._components[name] = cached
        return cached


def _fingerprint(t: ResourceType) -> tuple[object, ...]:
    """Everything about a type that its group/version's document depends on."""
    schema = json.dumps(t.crd_schema, sort_keys=True) if t.crd_schema is not None else None
    return (
        t.kind,
        t.plural,
        t.namespaced,
        tuple(sorted(t.subresources)),
        tuple(t.verbs),
        t.definition,
        t.crd_name,
        schema,
    )


def _hash(body: bytes) -> str:
    return hashlib.sha512(body).hexdigest().upper()
