"""The `/openapi/v3` documents: what kubectl inspects in them, and that they are self-contained.

The last class drives the real `kubectl` against a small fake API server that serves these
documents, to prove the properties kubectl's source relies on actually hold end to end:
server-side field validation is detected, `kubectl apply` computes strategic merge patches for
built-in kinds and JSON merge patches for custom ones, and `kubectl explain` finds fields.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.openapi import (
    OpenAPIV3,
    convert_schema,
    crd_component_name,
    index_path_key,
)
from reconciler.apiserver.pki import ensure_credentials, ssl_context
from reconciler.apiserver.resources import ResourceRegistry, ResourceType, builtin_types
from reconciler.schema.definitions import Definitions, load

JSONDict = dict[str, Any]

DEPLOYMENT_GVK = {"group": "apps", "kind": "Deployment", "version": "v1"}
SCHEMAS = "#/components/schemas/"

CRONTAB_CRD: JSONDict = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "crontabs.stable.example.com"},
    "spec": {
        "group": "stable.example.com",
        "scope": "Namespaced",
        "names": {"kind": "CronTab", "plural": "crontabs", "singular": "crontab"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "cronSpec": {"type": "string", "description": "When to run."},
                                    "replicas": {"type": "integer"},
                                    "template": {
                                        "type": "object",
                                        "x-kubernetes-embedded-resource": True,
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                },
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def defs() -> Definitions:
    return load()


@pytest.fixture
def registry(defs: Definitions) -> ResourceRegistry:
    return ResourceRegistry(builtin_types(defs))


@pytest.fixture
def openapi(defs: Definitions, registry: ResourceRegistry) -> OpenAPIV3:
    return OpenAPIV3(defs, registry)


def _doc(openapi: OpenAPIV3, group: str, version: str) -> JSONDict:
    doc = openapi.document(group, version)
    assert doc is not None
    return doc


def _operations(doc: JSONDict) -> Iterator[tuple[str, str, JSONDict]]:
    for url, item in doc["paths"].items():
        for method in ("get", "put", "post", "delete", "patch"):
            if method in item:
                yield url, method, item[method]


def _query_params(op: JSONDict) -> set[str]:
    return {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


class TestIndex:
    def test_lists_every_served_group_version_and_the_roots(self, openapi: OpenAPIV3) -> None:
        paths = openapi.index()["paths"]
        for key in ("api/v1", "apis/apps/v1", "apis/batch/v1", "apis/autoscaling/v2"):
            assert key in paths
        assert {"api", "apis", "apis/apps"} <= paths.keys()

    def test_urls_carry_the_hash_of_the_served_bytes(self, openapi: OpenAPIV3) -> None:
        url = openapi.index()["paths"]["apis/apps/v1"]["serverRelativeURL"]
        served = openapi.serialized("apis/apps/v1")
        assert served is not None
        body, etag = served
        assert url == f"/openapi/v3/apis/apps/v1?hash={etag}"
        assert etag == hashlib.sha512(body).hexdigest().upper()
        assert json.loads(body) == openapi.document("apps", "v1")
        assert openapi.server_relative_url("apis/apps/v1") == url

    def test_index_path_key(self) -> None:
        assert index_path_key("", "v1") == "api/v1"
        assert index_path_key("apps", "v1") == "apis/apps/v1"

    def test_unknown_group_version_has_no_document(self, openapi: OpenAPIV3) -> None:
        assert openapi.document("apps", "v1beta1") is None
        assert openapi.serialized("apis/nope/v1") is None

    def test_root_documents(self, openapi: OpenAPIV3) -> None:
        apis = openapi.document_for_path("apis")
        assert apis is not None and "/apis/" in apis["paths"]
        group = openapi.document_for_path("/apis/apps/")
        assert group is not None and "/apis/apps/" in group["paths"]


class TestFieldValidationSupport:
    """cli-runtime's queryParamVerifierV3 must find `fieldValidation` on a kind's PATCH."""

    def test_deployment_writes_carry_field_validation_and_dry_run(self, openapi: OpenAPIV3) -> None:
        doc = _doc(openapi, "apps", "v1")
        item = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
        collection = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]
        for op in (collection["post"], item["put"], item["patch"]):
            assert op["x-kubernetes-group-version-kind"] == DEPLOYMENT_GVK
            assert {"fieldValidation", "dryRun", "fieldManager"} <= _query_params(op)
        assert "force" in _query_params(item["patch"])

    @pytest.mark.parametrize(("group", "version"), [("", "v1"), ("apps", "v1"), ("batch", "v1")])
    def test_every_patch_operation_supports_it(
        self, openapi: OpenAPIV3, group: str, version: str
    ) -> None:
        # The verifier stops at the first PATCH with a matching GVK, in Go's random map order.
        doc = _doc(openapi, group, version)
        patches = [op for _, method, op in _operations(doc) if method == "patch"]
        assert patches
        for op in patches:
            assert "fieldValidation" in _query_params(op), op["operationId"]

    def test_every_served_kind_has_a_patch_operation(
        self, openapi: OpenAPIV3, registry: ResourceRegistry
    ) -> None:
        for group, versions in registry.group_versions().items():
            for version in versions:
                doc = _doc(openapi, group, version)
                kinds = {
                    op["x-kubernetes-group-version-kind"]["kind"]
                    for _, method, op in _operations(doc)
                    if method == "patch"
                }
                for t in registry.in_group_version(group, version):
                    if "patch" in t.verbs:  # not the create-only reviews
                        assert t.kind in kinds, (group, version, t.kind)

    def test_scale_operations_are_typed_as_autoscaling_v1_scale(self, openapi: OpenAPIV3) -> None:
        doc = _doc(openapi, "apps", "v1")
        scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
        assert scale["patch"]["x-kubernetes-group-version-kind"] == {
            "group": "autoscaling",
            "kind": "Scale",
            "version": "v1",
        }
        assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"]


class TestPaths:
    def test_namespaced_resource_paths(self, openapi: OpenAPIV3) -> None:
        paths = _doc(openapi, "apps", "v1")["paths"]
        base = "/apis/apps/v1/namespaces/{namespace}/deployments"
        assert set(paths[base]) >= {"get", "post", "delete", "parameters"}
        assert set(paths[base + "/{name}"]) >= {"get", "put", "patch", "delete"}
        assert set(paths[base + "/{name}/status"]) >= {"get", "put", "patch"}
        assert set(paths["/apis/apps/v1/deployments"]) == {"get", "parameters"}
        assert paths["/apis/apps/v1/deployments"]["get"]["x-kubernetes-action"] == "list"
        names = {p["name"] for p in paths[base + "/{name}"]["parameters"]}
        assert names == {"name", "namespace", "pretty"}

    def test_cluster_scoped_resource_paths(self, openapi: OpenAPIV3) -> None:
        paths = _doc(openapi, "", "v1")["paths"]
        assert "/api/v1/namespaces" in paths
        item = paths["/api/v1/namespaces/{name}"]
        assert {p["name"] for p in item["parameters"]} == {"name", "pretty"}
        assert item["get"]["x-kubernetes-group-version-kind"] == {
            "group": "",
            "kind": "Namespace",
            "version": "v1",
        }

    def test_list_and_delete_parameters(self, openapi: OpenAPIV3) -> None:
        paths = _doc(openapi, "", "v1")["paths"]
        collection = paths["/api/v1/namespaces/{namespace}/configmaps"]
        assert {"labelSelector", "fieldSelector", "watch", "resourceVersion", "limit"} <= (
            _query_params(collection["get"])
        )
        assert {"propagationPolicy", "dryRun", "gracePeriodSeconds"} <= _query_params(
            paths["/api/v1/namespaces/{namespace}/configmaps/{name}"]["delete"]
        )

    def test_builtin_patch_accepts_strategic_merge_patch(self, openapi: OpenAPIV3) -> None:
        doc = _doc(openapi, "apps", "v1")
        patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
        assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]


class TestComponents:
    @pytest.mark.parametrize("key", ["api/v1", "apis/apps/v1", "apis/batch/v1", "api", "apis"])
    def test_every_ref_resolves_inside_the_document(self, openapi: OpenAPIV3, key: str) -> None:
        doc = openapi.document_for_path(key)
        assert doc is not None
        schemas = doc["components"]["schemas"]
        refs = set(_refs(doc))
        assert refs
        for ref in refs:
            assert ref.startswith(SCHEMAS), ref
            assert ref[len(SCHEMAS) :] in schemas, ref

    def test_every_document_is_self_contained(
        self, openapi: OpenAPIV3, registry: ResourceRegistry
    ) -> None:
        registry.set_crd(CRONTAB_CRD)
        for key in openapi.index()["paths"]:
            doc = openapi.document_for_path(key)
            assert doc is not None
            schemas = doc["components"]["schemas"]
            for ref in _refs(doc):
                assert ref[len(SCHEMAS) :] in schemas, (key, ref)

    def test_only_reachable_definitions_are_included(self, openapi: OpenAPIV3) -> None:
        schemas = _doc(openapi, "apps", "v1")["components"]["schemas"]
        meta = "io.k8s.apimachinery.pkg.apis.meta.v1."
        for name in (
            "io.k8s.api.apps.v1.Deployment",
            "io.k8s.api.apps.v1.DeploymentList",
            "io.k8s.api.core.v1.PodSpec",
            meta + "Status",
            meta + "DeleteOptions",
            meta + "Patch",
            meta + "ObjectMeta",
        ):
            assert name in schemas
        assert "io.k8s.api.batch.v1.Job" not in schemas
        assert "io.k8s.api.core.v1.Service" not in schemas

    def test_schemas_are_openapi_3_0(self, openapi: OpenAPIV3) -> None:
        text = json.dumps(_doc(openapi, "", "v1"))
        assert "#/$defs/" not in text
        assert '"null"' not in text
        assert "$schema" not in text
        for schema in _doc(openapi, "", "v1")["components"]["schemas"].values():
            for node in _walk(schema):
                assert not isinstance(node.get("type"), list)
                if isinstance(node.get("$ref"), str):
                    assert list(node) == ["$ref"], "OpenAPI 3.0 ignores siblings of $ref"

    def test_patch_metadata_and_gvk_are_kept(self, openapi: OpenAPIV3) -> None:
        schemas = _doc(openapi, "apps", "v1")["components"]["schemas"]
        assert (
            DEPLOYMENT_GVK
            in schemas["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"]
        )
        containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
        assert containers["x-kubernetes-patch-merge-key"] == "name"
        assert containers["x-kubernetes-patch-strategy"] == "merge"
        assert containers["items"] == {"$ref": SCHEMAS + "io.k8s.api.core.v1.Container"}
        strategy = schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
        assert strategy["allOf"] == [{"$ref": SCHEMAS + "io.k8s.api.apps.v1.DeploymentStrategy"}]
        assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
        api_version = schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["apiVersion"]
        assert api_version["type"] == "string" and "enum" not in api_version

    def test_convert_schema(self) -> None:
        refs: set[str] = set()
        out = convert_schema(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": ["object", "null"],
                "properties": {
                    "a": {"type": ["string", "null"], "const": "x"},
                    "b": {"$ref": "#/$defs/B", "description": "a B"},
                    "c": {"type": "array", "items": {"$ref": "#/$defs/C"}},
                    "d": {"oneOf": [{"type": ["string", "null"]}, {"type": ["integer", "null"]}]},
                    "e": {"x-kubernetes-unions": [{"type": ["x", "null"]}]},
                },
            },
            refs,
        )
        assert out == {
            "type": "object",
            "properties": {
                "a": {"type": "string", "enum": ["x"]},
                "b": {"allOf": [{"$ref": SCHEMAS + "B"}], "description": "a B"},
                "c": {"type": "array", "items": {"$ref": SCHEMAS + "C"}},
                "d": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                "e": {"x-kubernetes-unions": [{"type": ["x", "null"]}]},
            },
        }
        assert refs == {"B", "C"}


class TestCustomResources:
    def test_crd_type_appears_in_its_group_document(
        self, openapi: OpenAPIV3, registry: ResourceRegistry
    ) -> None:
        assert openapi.document("stable.example.com", "v1") is None
        registry.set_crd(CRONTAB_CRD)

        assert "apis/stable.example.com/v1" in openapi.index()["paths"]
        doc = _doc(openapi, "stable.example.com", "v1")
        name = crd_component_name("stable.example.com", "v1", "CronTab")
        assert name == "com.example.stable.v1.CronTab"
        schema = doc["components"]["schemas"][name]
        gvk = {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}
        assert schema["x-kubernetes-group-version-kind"] == [gvk]
        props = schema["properties"]
        assert props["spec"]["properties"]["cronSpec"] == {
            "type": "string",
            "description": "When to run.",
        }
        assert props["apiVersion"]["type"] == props["kind"]["type"] == "string"
        assert props["metadata"]["allOf"] == [
            {"$ref": SCHEMAS + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
        ]
        template = props["spec"]["properties"]["template"]
        assert {"apiVersion", "kind", "metadata"} <= template["properties"].keys()
        assert doc["components"]["schemas"][name + "List"]["x-kubernetes-group-version-kind"] == [
            {**gvk, "kind": "CronTabList"}
        ]

        base = "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs"
        patch = doc["paths"][base + "/{name}"]["patch"]
        assert patch["x-kubernetes-group-version-kind"] == gvk
        assert "fieldValidation" in _query_params(patch)
        assert "application/merge-patch+json" in patch["requestBody"]["content"]
        assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
        assert "patch" in doc["paths"][base + "/{name}/status"]
        assert "/apis/stable.example.com/v1/crontabs" in doc["paths"]

    def test_crd_changes_rebuild_only_their_group_version(
        self, openapi: OpenAPIV3, registry: ResourceRegistry
    ) -> None:
        apps = openapi.serialized("apis/apps/v1")
        assert apps is not None
        registry.set_crd(CRONTAB_CRD)
        first = openapi.document("stable.example.com", "v1")
        assert openapi.serialized("apis/apps/v1")[0] is apps[0]  # untouched, not rebuilt

        changed = json.loads(json.dumps(CRONTAB_CRD))
        version = changed["spec"]["versions"][0]
        version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["suspend"] = {
            "type": "boolean"
        }
        registry.set_crd(changed)
        second = openapi.document("stable.example.com", "v1")
        assert second is not None and second != first
        spec = second["components"]["schemas"]["com.example.stable.v1.CronTab"]["properties"]
        assert "suspend" in spec["spec"]["properties"]
        assert openapi.serialized("apis/apps/v1")[0] is apps[0]

        registry.remove_crd("crontabs.stable.example.com")
        assert openapi.document("stable.example.com", "v1") is None
        assert "apis/stable.example.com/v1" not in openapi.index()["paths"]


def _walk(node: Any) -> Iterator[JSONDict]:
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if not key.startswith("x-"):
                yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


# --- kubectl against a fake server that serves these documents ------------------------------

KUBECTL = shutil.which("kubectl")


def _resource_list(group_version: str, types: list[ResourceType]) -> JSONDict:
    resources: list[JSONDict] = []
    for t in types:
        resources.append(
            {
                "name": t.plural,
                "singularName": t.singular,
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": list(t.verbs),
                "shortNames": list(t.short_names),
            }
        )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


class _FakeAPI(http.server.BaseHTTPRequestHandler):
    """Legacy discovery, the OpenAPI v3 documents, no /openapi/v2, and naive create/patch."""

    protocol_version = "HTTP/1.1"
    openapi: OpenAPIV3
    registry: ResourceRegistry
    writes: list[tuple[str, str, str, JSONDict]]
    objects: dict[str, JSONDict]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes | JSONDict) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self) -> None:
        status = {"kind": "Status", "apiVersion": "v1", "status": "Failure"}
        self._send(404, {**status, "reason": "NotFound", "code": 404})

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        parts = path.split("/")
        if path == "/api":
            self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        elif path == "/apis":
            groups = [
                {
                    "name": group,
                    "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                    "preferredVersion": {"groupVersion": f"{group}/{versions[0]}"}
                    | {"version": versions[0]},
                }
                for group, versions in self.registry.group_versions().items()
                if group
            ]
            self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        elif path == "/api/v1":
            self._send(200, _resource_list("v1", self.registry.in_group_version("", "v1")))
        elif len(parts) == 4 and parts[1] == "apis":
            types = self.registry.in_group_version(parts[2], parts[3])
            self._send(200, _resource_list(f"{parts[2]}/{parts[3]}", types))
        elif path == "/openapi/v3":
            self._send(200, self.openapi.index_serialized()[0])
        elif path.startswith("/openapi/v3/"):
            served = self.openapi.serialized(path.removeprefix("/openapi/v3/"))
            self._send(200, served[0]) if served else self._not_found()
        elif path in self.objects:
            self._send(200, self.objects[path])
        else:
            self._not_found()

    def _write(self) -> JSONDict:
        body: JSONDict = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        url = urllib.parse.urlsplit(self.path)
        content_type = self.headers.get("Content-Type", "")
        self.writes.append((self.command, url.path, url.query + "|" + content_type, body))
        return body

    def do_POST(self) -> None:
        obj = self._write()
        obj["metadata"]["resourceVersion"] = "1"
        self.objects[urllib.parse.urlsplit(self.path).path + "/" + obj["metadata"]["name"]] = obj
        self._send(201, obj)

    def do_PATCH(self) -> None:
        self._write()
        self._send(200, self.objects[urllib.parse.urlsplit(self.path).path])


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
class TestKubectl:
    @pytest.fixture
    def kubectl(
        self, tmp_path: Path, openapi: OpenAPIV3, registry: ResourceRegistry
    ) -> Iterator[tuple[Any, list[tuple[str, str, str, JSONDict]]]]:
        registry.set_crd(CRONTAB_CRD)
        writes: list[tuple[str, str, str, JSONDict]] = []
        handler = type(
            "Handler",
            (_FakeAPI,),
            {"openapi": openapi, "registry": registry, "writes": writes, "objects": {}},
        )
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        creds = ensure_credentials(tmp_path, "127.0.0.1", server.server_address[1])
        server.socket = ssl_context(creds).wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()

        def run(*args: str, stdin: JSONDict | None = None) -> str:
            assert KUBECTL is not None
            command = [KUBECTL, "--kubeconfig", str(creds.kubeconfig)]
            command += ["--cache-dir", str(tmp_path / "cache"), *args]
            out = subprocess.run(
                command,
                input=None if stdin is None else json.dumps(stdin),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert out.returncode == 0, out.stderr
            return out.stdout

        try:
            yield run, writes
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    def test_apply_uses_server_side_validation_and_strategic_merge(
        self, kubectl: tuple[Any, list[tuple[str, str, str, JSONDict]]]
    ) -> None:
        run, writes = kubectl
        deployment: JSONDict = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                },
            },
        }
        run("apply", "-f", "-", stdin=deployment)
        containers = deployment["spec"]["template"]["spec"]["containers"]
        containers.append({"name": "sidecar", "image": "busybox"})
        run("apply", "-f", "-", stdin=deployment)

        (create_method, _, create_query, _), (patch_method, _, patch_query, patch) = writes
        assert create_method == "POST" and "fieldValidation=Strict" in create_query
        assert patch_method == "PATCH" and "fieldValidation=Strict" in patch_query
        assert patch_query.endswith("|application/strategic-merge-patch+json")
        # The merge key came from the v3 schema: only the new container is sent.
        spec = patch["spec"]["template"]["spec"]
        assert spec["containers"] == [{"name": "sidecar", "image": "busybox"}]

    def test_apply_of_a_custom_resource_uses_merge_patch(
        self, kubectl: tuple[Any, list[tuple[str, str, str, JSONDict]]]
    ) -> None:
        run, writes = kubectl
        crontab: JSONDict = {
            "apiVersion": "stable.example.com/v1",
            "kind": "CronTab",
            "metadata": {"name": "tick", "namespace": "default"},
            "spec": {"cronSpec": "* * * * *"},
        }
        run("apply", "-f", "-", stdin=crontab)
        crontab["spec"]["replicas"] = 2
        run("apply", "-f", "-", stdin=crontab)

        (_, _, create_query, _), (_, _, patch_query, patch) = writes
        assert "fieldValidation=Strict" in create_query
        assert patch_query.endswith("|application/merge-patch+json")
        assert patch["spec"] == {"replicas": 2}

    def test_explain_reads_builtin_and_custom_kinds(
        self, kubectl: tuple[Any, list[tuple[str, str, str, JSONDict]]]
    ) -> None:
        run, _ = kubectl
        out = run("explain", "deployment.spec.strategy")
        assert "KIND:       Deployment" in out and "rollingUpdate\t<RollingUpdateDeployment>" in out
        out = run("explain", "svc.spec.ports.targetPort")
        assert "FIELD: targetPort <IntOrString>" in out
        out = run("explain", "crontabs.spec")
        assert "GROUP:      stable.example.com" in out and "When to run." in out
