"""Bad input over HTTP gets the right status, names the problem, and stores nothing."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import ReconServer

pytestmark = pytest.mark.e2e

CMS = "/api/v1/namespaces/default/configmaps"


def count(server: ReconServer) -> int:
    status, body = server.request("GET", CMS)
    assert status == 200
    return len(body["items"])


def test_no_token_or_a_wrong_token_is_401_and_nothing_stored(server: ReconServer) -> None:
    before = count(server)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sneaky"}}
    for token in (None, "not-the-token"):
        status, body = server.request("POST", CMS, cm, token=token)
        assert status == 401 and body["reason"] == "Unauthorized"
    assert count(server) == before
    status, _ = server.request("GET", "/healthz", token=None)
    assert status == 200  # health stays public, as on Kubernetes


def test_malformed_body_is_400(server: ReconServer) -> None:
    before = count(server)
    status, body = server.request("POST", CMS, raw=b'{"apiVersion": "v1", "kind": ')
    assert status == 400 and body["kind"] == "Status" and body["reason"] == "BadRequest"
    assert count(server) == before


def test_invalid_object_is_422_with_field_paths(server: ReconServer) -> None:
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "broken"},
        "spec": {
            "replicas": "two",
            "selector": {"matchLabels": {"app": "x"}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {
                    "containers": [
                        {"name": "c", "image": "busybox", "ports": [{"containerPort": "eighty"}]}
                    ]
                },
            },
        },
    }
    status, body = server.request(
        "POST", "/apis/apps/v1/namespaces/default/deployments?fieldValidation=Strict", deploy
    )
    assert status == 422 and body["reason"] == "Invalid"
    fields = sorted(c["field"] for c in body["details"]["causes"])
    assert fields == ["spec.replicas", "spec.template.spec.containers[0].ports[0].containerPort"]
    status, _ = server.request("GET", "/apis/apps/v1/namespaces/default/deployments/broken")
    assert status == 404


def test_stale_resource_version_is_409(server: ReconServer) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "racy"}, "data": {"v": "1"}}
    status, created = server.request("POST", CMS, cm)
    assert status == 201
    first_rv = created["metadata"]["resourceVersion"]
    created["data"]["v"] = "2"
    status, _ = server.request("PUT", f"{CMS}/racy", created)
    assert status == 200
    created["data"]["v"] = "3"
    created["metadata"]["resourceVersion"] = first_rv
    status, body = server.request("PUT", f"{CMS}/racy", created)
    assert status == 409 and body["reason"] == "Conflict"
    status, live = server.request("GET", f"{CMS}/racy")
    assert live["data"]["v"] == "2"


def test_unknown_kind_or_object_is_404(server: ReconServer) -> None:
    status, body = server.request("GET", "/apis/example.com/v1/namespaces/default/gadgets")
    assert status == 404 and body["reason"] == "NotFound"
    status, body = server.request(
        "POST", "/apis/nope.io/v1/namespaces/default/things", {"kind": "Thing"}
    )
    assert status == 404
    status, body = server.request("GET", f"{CMS}/does-not-exist")
    assert status == 404 and body["details"]["name"] == "does-not-exist"


def test_failed_json_patch_test_is_422(server: ReconServer) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "tested"},
        "data": {"v": "1"},
    }
    server.request("POST", CMS, cm)
    status, body = server.request(
        "PATCH",
        f"{CMS}/tested",
        [
            {"op": "test", "path": "/data/v", "value": "9"},
            {"op": "replace", "path": "/data/v", "value": "2"},
        ],
        content_type="application/json-patch+json",
    )
    assert status == 422 and body["reason"] == "Invalid"
    assert server.request("GET", f"{CMS}/tested")[1]["data"]["v"] == "1"


def test_too_old_watch_gets_an_error_event_with_410(fresh_server: ReconServer) -> None:
    fresh_server.stop()  # history restarts empty: revisions before the restart are compacted
    fresh_server.start()
    status, text = fresh_server.request(
        "GET", f"{CMS}?watch=true&resourceVersion=1&timeoutSeconds=2"
    )
    assert status == 200
    event = text if isinstance(text, dict) else json.loads(text.splitlines()[0])
    assert event["type"] == "ERROR" and event["object"]["code"] == 410


def test_send_initial_events_is_refused_with_422(server: ReconServer) -> None:
    status, body = server.request(
        "GET", f"{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
    )
    assert status == 422 and body["reason"] == "Invalid"
