"""`pods/ephemeralcontainers` (what `kubectl debug` patches) and `pods/attach`, over HTTPS
against a real ApiServer: discovery, the only-additions rules in upstream's words, the pod
itself still refusing the change, RBAC by subresource, and the attach WebSocket relayed to
a fake node."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest

from reconciler.apiserver import channels
from reconciler.apiserver.ephemeral_containers import ephemeral_update
from reconciler.apiserver.podio import AttachStream, PodStreamError
from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.errors import InvalidError
from reconciler.client.inprocess import InProcessClient
from reconciler.clock import ManualClock

JSONDict = dict[str, Any]
PODS = "/api/v1/namespaces/default/pods"
SMP = "application/strategic-merge-patch+json"


@dataclass
class Api:
    server: ApiServer
    client: InProcessClient
    http: aiohttp.ClientSession

    @property
    def admin(self) -> str:
        assert self.server.credentials is not None
        return self.server.credentials.token

    async def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        token: str | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.admin}", "Content-Type": content_type}
        data = json.dumps(body) if body is not None else None
        async with self.http.request(method, path, data=data, headers=headers) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def pod(self, name: str = "web", **spec: Any) -> JSONDict:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
            "spec": {
                "initContainers": [{"name": "setup", "image": "busybox:1.36"}],
                "containers": [{"name": "app", "image": "nginx:1.27"}],
                "volumes": [{"name": "data", "emptyDir": {}}],
                **spec,
            },
        }
        return await self.client.create(body)

    async def debug(self, name: str, *containers: JSONDict) -> tuple[int, Any]:
        """What `kubectl debug` sends: a two-way strategic merge patch adding to the list,
        with the order of the whole list as a directive."""
        stored = await self.client.get("v1", "Pod", name, "default")
        names = [c["name"] for c in stored["spec"].get("ephemeralContainers") or []]
        names += [c["name"] for c in containers]
        patch = {
            "spec": {
                "$setElementOrder/ephemeralContainers": [{"name": n} for n in names],
                "ephemeralContainers": list(containers),
            }
        }
        return await self.call(
            "PATCH", f"{PODS}/{name}/ephemeralcontainers", patch, content_type=SMP
        )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0), ManualClock())
    await server.start()
    async with aiohttp.ClientSession(
        base_url=f"https://127.0.0.1:{server.port}",
        connector=aiohttp.TCPConnector(ssl=False),
    ) as http:
        yield Api(server, InProcessClient(server.service), http)
    await server.stop()


def debugger(name: str = "debugger", **extra: Any) -> JSONDict:
    return {"name": name, "image": "busybox", "stdin": True, "tty": True, **extra}


# -- discovery ---------------------------------------------------------------------------------


async def test_discovery_lists_the_subresources_kubectl_looks_for(api: Api) -> None:
    code, listing = await api.call("GET", "/api/v1")
    assert code == 200
    by_name = {r["name"]: r for r in listing["resources"]}
    ephemeral = by_name["pods/ephemeralcontainers"]
    assert (ephemeral["kind"], ephemeral["namespaced"]) == ("Pod", True)
    assert sorted(ephemeral["verbs"]) == ["get", "patch", "update"]
    assert "group" not in ephemeral  # the Pod itself, in the core group
    assert sorted(by_name["pods/attach"]["verbs"]) == ["create", "get"]
    assert "configmaps/ephemeralcontainers" not in by_name


# -- writes ------------------------------------------------------------------------------------


async def test_kubectl_debug_patch_adds_a_defaulted_ephemeral_container(api: Api) -> None:
    await api.pod()
    code, pod = await api.debug("web", debugger(targetContainerName="app"))
    assert code == 200, pod
    [added] = pod["spec"]["ephemeralContainers"]
    assert added == {
        "name": "debugger",
        "image": "busybox",
        "stdin": True,
        "tty": True,
        "targetContainerName": "app",
        "imagePullPolicy": "Always",  # :latest, as for any container
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "resources": {},
    }
    code, read = await api.call("GET", f"{PODS}/web/ephemeralcontainers")
    assert code == 200 and read["kind"] == "Pod"
    assert read["spec"]["ephemeralContainers"] == [added]
    assert (await api.client.get("v1", "Pod", "web", "default"))["spec"] == pod["spec"]
    # A second one joins the first (the patch merges by name).
    code, pod = await api.debug("web", {"name": "second", "image": "busybox:1.36"})
    assert code == 200, pod
    assert [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["debugger", "second"]


async def test_only_the_ephemeral_containers_change_through_the_subresource(api: Api) -> None:
    created = await api.pod()
    patch = {
        "metadata": {"labels": {"app": "changed", "extra": "x"}},
        "spec": {
            "containers": [{"name": "app", "image": "nginx:9"}],
            "ephemeralContainers": [debugger()],
        },
        "status": {"phase": "Failed"},
    }
    code, pod = await api.call("PATCH", f"{PODS}/web/ephemeralcontainers", patch, content_type=SMP)
    assert code == 200, pod
    assert pod["metadata"]["labels"] == {"app": "web"}
    assert pod["spec"]["containers"] == created["spec"]["containers"]
    assert pod.get("status") == created.get("status")
    assert [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["debugger"]


async def test_put_with_a_whole_pod_and_dry_run(api: Api) -> None:
    pod = await api.pod()
    pod["spec"]["ephemeralContainers"] = [debugger()]
    url = f"{PODS}/web/ephemeralcontainers"
    code, answered = await api.call("PUT", f"{url}?dryRun=All", pod)
    assert code == 200 and answered["spec"]["ephemeralContainers"][0]["name"] == "debugger"
    assert "ephemeralContainers" not in (await api.client.get("v1", "Pod", "web"))["spec"]
    code, answered = await api.call("PUT", url, pod)
    assert code == 200, answered
    stored = await api.client.get("v1", "Pod", "web")
    assert stored["spec"]["ephemeralContainers"] == answered["spec"]["ephemeralContainers"]
    # A stale resourceVersion is a conflict, as for any PUT.
    code, answered = await api.call("PUT", url, pod)
    assert code == 409, answered


@pytest.mark.parametrize(
    ("containers", "field", "message"),
    [
        (
            [debugger(name="app")],
            "spec.ephemeralContainers[0].name",
            'Duplicate value: "app"',
        ),
        (
            [debugger(name="setup")],
            "spec.ephemeralContainers[0].name",
            'Duplicate value: "setup"',
        ),
        (
            [debugger(), debugger()],
            "spec.ephemeralContainers[1].name",
            'Duplicate value: "debugger"',
        ),
        (
            [debugger(targetContainerName="nope")],
            "spec.ephemeralContainers[0].targetContainerName",
            'Not found: "nope"',
        ),
        (
            [debugger(ports=[{"containerPort": 80}])],
            "spec.ephemeralContainers[0].ports",
            "Forbidden: cannot be set for an Ephemeral Container",
        ),
        (
            [debugger(readinessProbe={"tcpSocket": {"port": 80}})],
            "spec.ephemeralContainers[0].readinessProbe",
            "Forbidden: cannot be set for an Ephemeral Container",
        ),
        (
            [debugger(lifecycle={"preStop": {"exec": {"command": ["true"]}}})],
            "spec.ephemeralContainers[0].lifecycle",
            "Forbidden: cannot be set for an Ephemeral Container",
        ),
        (
            [debugger(resources={"limits": {"cpu": "1"}})],
            "spec.ephemeralContainers[0].resources",
            "Forbidden: cannot be set for an Ephemeral Container",
        ),
        (
            [debugger(volumeMounts=[{"name": "data", "mountPath": "/d", "subPath": "x"}])],
            "spec.ephemeralContainers[0].volumeMounts[0].subPath",
            "Forbidden: cannot be set for an Ephemeral Container",
        ),
        (
            [debugger(volumeMounts=[{"name": "other", "mountPath": "/d"}])],
            "spec.ephemeralContainers[0].volumeMounts[0].name",
            'Not found: "other"',
        ),
        (
            [{"name": "no-image"}],
            "spec.ephemeralContainers[0].image",
            "Required value",
        ),
        (
            [debugger(name="Bad_Name")],
            "spec.ephemeralContainers[0].name",
            'Invalid value: "Bad_Name": a lowercase RFC 1123 label must consist of',
        ),
    ],
)
async def test_a_new_ephemeral_container_must_be_valid(
    api: Api, containers: list[JSONDict], field: str, message: str
) -> None:
    pod = await api.pod()
    pod["spec"]["ephemeralContainers"] = containers
    code, status = await api.call("PUT", f"{PODS}/web/ephemeralcontainers", pod)
    assert code == 422, status
    assert status["reason"] == "Invalid"
    assert status["message"].startswith(f'Pod "web" is invalid: {field}: {message}')
    causes = {
        (c["field"], c["message"].split("\n")[0][: len(message)])
        for c in status["details"]["causes"]
    }
    assert (field, message) in causes
    stored = await api.client.get("v1", "Pod", "web")
    assert "ephemeralContainers" not in stored["spec"]


async def test_existing_ephemeral_containers_cannot_be_changed_or_removed(api: Api) -> None:
    pod = await api.pod()
    assert (await api.debug("web", debugger()))[0] == 200
    code, status = await api.debug("web", debugger(image="busybox:1.36"))
    assert code == 422, status
    assert status["message"].startswith(
        'Pod "web" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral '
        'containers "debugger" may not be changed\nchanged: image'
    )
    pod = await api.client.get("v1", "Pod", "web")
    pod["spec"]["ephemeralContainers"] = []
    code, status = await api.call("PUT", f"{PODS}/web/ephemeralcontainers", pod)
    assert code == 422, status
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "message": 'Forbidden: existing ephemeral containers "debugger" may not be removed\n',
            "field": "spec.ephemeralContainers",
        }
    ]
    # A JSON patch replacing the list with a changed copy is refused the same way.
    ops = [{"op": "replace", "path": "/spec/ephemeralContainers/0/tty", "value": False}]
    code, status = await api.call(
        "PATCH",
        f"{PODS}/web/ephemeralcontainers",
        ops,
        content_type="application/json-patch+json",
    )
    assert code == 422 and "may not be changed\nchanged: tty" in status["message"]


async def test_the_pod_itself_still_refuses_ephemeral_container_changes(api: Api) -> None:
    await api.pod()
    patch = {"spec": {"ephemeralContainers": [debugger()]}}
    code, status = await api.call("PATCH", f"{PODS}/web", patch, content_type=SMP)
    assert code == 422, status
    assert "pod updates may not change fields other than" in status["message"]
    assert "spec.ephemeralContainers" in status["message"]
    # Once added through the subresource, the pod's own writes keep working around them.
    assert (await api.debug("web", debugger()))[0] == 200
    pod = await api.client.get("v1", "Pod", "web")
    pod["metadata"]["labels"]["tier"] = "front"
    code, updated = await api.call("PUT", f"{PODS}/web", pod)
    assert code == 200, updated
    assert updated["spec"]["ephemeralContainers"] == pod["spec"]["ephemeralContainers"]
    pod = await api.client.get("v1", "Pod", "web")
    pod["spec"]["ephemeralContainers"] = []
    code, status = await api.call("PUT", f"{PODS}/web", pod)
    assert code == 422 and "spec.ephemeralContainers" in status["message"]


def test_ephemeral_update_takes_nothing_but_the_ephemeral_containers() -> None:
    stored: JSONDict = {
        "metadata": {"name": "web", "labels": {"a": "1"}},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
    }
    requested = {
        "metadata": {"labels": {"a": "2"}},
        "spec": {"containers": [], "ephemeralContainers": [{"name": "d", "image": "x:1"}]},
    }
    updated, refused = ephemeral_update(json.loads(json.dumps(stored)), requested)
    assert refused == []
    assert updated["metadata"] == stored["metadata"]
    assert updated["spec"]["containers"] == stored["spec"]["containers"]
    assert updated["spec"]["ephemeralContainers"][0]["imagePullPolicy"] == "IfNotPresent"
    # Adding nothing to a pod that has none is no change.
    same, refused = ephemeral_update(json.loads(json.dumps(stored)), {"spec": {}})
    assert refused == [] and same == stored


# -- RBAC --------------------------------------------------------------------------------------


async def test_rbac_names_the_subresource(api: Api) -> None:
    await api.pod()
    await api.client.create(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "dev", "namespace": "default"},
        }
    )
    rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch", "update"]}]
    await _role(api, "pods-only", rules)
    code, issued = await api.call(
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/dev/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    assert code == 201, issued
    token = issued["status"]["token"]
    url = f"{PODS}/web/ephemeralcontainers"
    patch = {"spec": {"ephemeralContainers": [debugger()]}}
    code, status = await api.call("PATCH", url, patch, token=token, content_type=SMP)
    assert code == 403, status
    assert (
        'User "system:serviceaccount:default:dev" cannot patch resource '
        '"pods/ephemeralcontainers" in API group "" in the namespace "default"'
    ) in status["message"]
    await _role(api, "debugger", [{**rules[0], "resources": ["pods/ephemeralcontainers"]}])

    async def allowed() -> bool:
        code, _ = await api.call("PATCH", url, patch, token=token, content_type=SMP)
        return code == 200

    for _ in range(100):
        if await allowed():
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the new Role was never honoured")


async def _role(api: Api, name: str, rules: list[JSONDict]) -> None:
    rbac = "rbac.authorization.k8s.io/v1"
    meta = {"name": name, "namespace": "default"}
    await api.client.create({"apiVersion": rbac, "kind": "Role", "metadata": meta, "rules": rules})
    await api.client.create(
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "dev", "namespace": "default"}],
        }
    )


# -- attach ------------------------------------------------------------------------------------


@dataclass
class FakeAttach:
    """The node's end of one attach: what the client wrote, and output to hand it."""

    output: asyncio.Queue[tuple[Literal["stdout", "stderr"], bytes] | None] = field(
        default_factory=asyncio.Queue
    )
    written: bytearray = field(default_factory=bytearray)
    stdin_closed: asyncio.Event = field(default_factory=asyncio.Event)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    closed: bool = False

    async def read(self) -> tuple[Literal["stdout", "stderr"], bytes] | None:
        return await self.output.get()

    async def write(self, data: bytes) -> None:
        self.written += data
        self.output.put_nowait(("stdout", data.upper()))  # a process echoing in capitals

    async def close_stdin(self) -> None:
        self.stdin_closed.set()

    async def resize(self, width: int, height: int) -> None:
        self.sizes.append((width, height))

    async def close(self) -> None:
        self.closed = True


class FakeNode:
    def __init__(self) -> None:
        self.sessions: list[tuple[str, bool, bool, FakeAttach]] = []

    async def attach(
        self, pod: dict[str, Any], container: str, *, stdin: bool, tty: bool
    ) -> AttachStream:
        if container == "setup":
            raise PodStreamError(400, 'container not found ("setup")')
        session = FakeAttach()
        self.sessions.append((container, stdin, tty, session))
        return session


async def test_attach_relays_stdin_output_and_resizes_then_succeeds(api: Api) -> None:
    node = FakeNode()
    api.server.pod_streams = node  # type: ignore[assignment]
    await api.pod(nodeName="node-a")
    headers = {"Authorization": f"Bearer {api.admin}"}
    url = f"{PODS}/web/attach?container=app&stdin=true&stdout=true&tty=true"
    async with api.http.ws_connect(url, headers=headers, protocols=channels.PROTOCOLS) as ws:
        assert ws.protocol == "v5.channel.k8s.io"
        await ws.send_bytes(channels.frame(channels.RESIZE, b'{"Width":120,"Height":40}'))
        await ws.send_bytes(channels.frame(channels.STDIN, b"ls\n"))
        reply = await asyncio.wait_for(ws.receive_bytes(), 5)
        assert reply == channels.frame(channels.STDOUT, b"LS\n")
        await ws.send_bytes(bytes([channels.CLOSE, channels.STDIN]))
        [(container, stdin, tty, session)] = node.sessions
        await asyncio.wait_for(session.stdin_closed.wait(), 5)
        session.output.put_nowait(None)  # the process exited
        status = await asyncio.wait_for(ws.receive_bytes(), 5)
        assert status[0] == channels.ERROR
        assert json.loads(status[1:])["status"] == "Success"
    assert (container, stdin, tty) == ("app", True, True)
    assert session.written == b"ls\n" and session.sizes == [(120, 40)]
    for _ in range(100):  # the server closes the node's session once the relay is over
        if session.closed:
            break
        await asyncio.sleep(0.01)
    assert session.closed


async def test_attach_refusals(api: Api) -> None:
    node = FakeNode()
    api.server.pod_streams = node  # type: ignore[assignment]
    await api.pod(nodeName="node-a")
    await api.pod("pending")
    base = f"{PODS}/web/attach"
    cases = [
        (f"{base}?container=app", "you must specify at least one of stdin, stdout, stderr"),
        (f"{base}?container=app&stdout=1&stderr=1&tty=1", "tty and stderr cannot both be true"),
        (f"{base}?container=nope&stdout=1", "container nope is not valid for pod web"),
        (f"{PODS}/pending/attach?stdout=1", "pod pending does not have a host assigned"),
        (f"{base}?container=app&stdout=1", "unable to upgrade connection"),  # not a WebSocket
    ]
    for url, message in cases:
        code, body = await api.call("POST", url)
        assert code == 400 and message in body["message"], (url, body)
    headers = {"Authorization": f"Bearer {api.admin}"}
    for url in (f"{base}?container=nope&stdout=1", f"{base}?container=setup&stdout=1"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await api.http.ws_connect(url, headers=headers, protocols=channels.PROTOCOLS)
        assert refused.value.status == 400, url
    assert [c for c, *_ in node.sessions] == []  # the node said no to "setup"


async def test_a_pod_cannot_be_created_with_ephemeral_containers(api: Api) -> None:
    with pytest.raises(InvalidError) as caught:
        await api.pod("born-debugged", ephemeralContainers=[{"name": "dbg", "image": "busybox"}])
    assert str(caught.value) == (
        'Pod "born-debugged" is invalid: spec.ephemeralContainers: Forbidden: cannot be set '
        "on create"
    )
