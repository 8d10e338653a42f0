"""The Docker adapter's pure parts: specs to Engine API arguments, the engine's JSON to
values, SDK errors to the runtime's. No engine needed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import docker.errors  # type: ignore[import-untyped, unused-ignore]
import pytest
import requests

from reconciler.runtime._docker_convert import (
    container_create_args,
    event_from_raw,
    parse_engine_time,
    sandbox_create_args,
    state_from_inspect,
)
from reconciler.runtime._docker_errors import Op, translate
from reconciler.runtime.base import (
    BindMount,
    ContainerSpec,
    ContainerStatus,
    EventKind,
    MountInfo,
    NetworkAttachment,
    PortMapping,
    PublishedPort,
    SandboxSpec,
    TmpfsMount,
    VolumeMount,
    split_log_timestamp,
    validate_sandbox_spec,
)
from reconciler.runtime.errors import (
    ConflictError,
    ContainerNotFoundError,
    ContainerNotRunningError,
    ContainerStartError,
    ImageNotFoundError,
    ImageNotPresentError,
    ImagePullError,
    InvalidSpecError,
    NetworkNotFoundError,
    ResourceInUseError,
    RuntimeUnavailableError,
)


def test_sandbox_arguments() -> None:
    spec = SandboxSpec(
        pod_uid="1234",
        name="web-0",
        namespace="shop",
        image="recon.local/pause",
        network="recon-shop",
        labels={"app": "web", "recon.dev/managed": "false"},
        ports=(PortMapping(8080), PortMapping(53, "udp", host_port=5353)),
        hostname="web-0",
        domainname="web.shop.svc.cluster.local",
        dns_aliases=("web-0.web",),
        extra_hosts={"db": "127.0.0.5"},
        dns_search=("shop.svc.cluster.local",),
        dns_options=("ndots:5",),
        extra_networks=(NetworkAttachment("recon-services", ("x.shop",)),),
    )
    args = sandbox_create_args(spec)
    assert (args.container["hostname"], args.container["domainname"]) == (
        "web-0",
        "web.shop.svc.cluster.local",
    )
    assert args.host_config["dns_search"] == ["shop.svc.cluster.local"]
    assert args.host_config["dns_opt"] == ["ndots:5"]
    assert args.attachments == (NetworkAttachment("recon-services", ("x.shop",)),)
    assert args.name == "recon_POD_web-0_shop_1234_0"
    assert args.host_config["port_bindings"] == {
        "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
    }
    assert args.host_config["ipc_mode"] == "shareable"
    assert args.host_config["network_mode"] == "recon-shop"
    assert args.host_config["extra_hosts"] == {"db": "127.0.0.5"}
    assert args.container["labels"] == {
        "app": "web",
        "recon.dev/managed": "true",  # the caller cannot unmark it
        "recon.dev/role": "sandbox",
        "recon.dev/pod-uid": "1234",
        "recon.dev/pod-name": "web-0",
        "recon.dev/pod-namespace": "shop",
    }
    assert (args.network, args.aliases) == ("recon-shop", ("web-0.web",))


def test_a_sandbox_on_the_host_network_and_namespaces() -> None:
    spec = SandboxSpec(
        pod_uid="1234",
        name="exporter",
        namespace="monitoring",
        image="recon.local/pause",
        network="host",
        host_pid=True,
        host_ipc=True,
    )
    args = sandbox_create_args(spec)
    assert args.host_config["network_mode"] == "host"
    assert (args.host_config["pid_mode"], args.host_config["ipc_mode"]) == ("host", "host")
    assert args.network is None  # no endpoint settings on the host's network
    assert (
        sandbox_create_args(
            SandboxSpec(pod_uid="1", name="p", namespace="n", image="i", network="n")
        ).host_config["pid_mode"]
        is None
    )
    with pytest.raises(InvalidSpecError, match="publishes no ports"):
        validate_sandbox_spec(dataclasses.replace(spec, ports=(PortMapping(80),)))


def test_container_arguments_join_the_sandbox() -> None:
    spec = ContainerSpec(
        name="web",
        image="nginx",
        command=("/bin/server",),
        env={"A": "1"},
        mounts=(
            BindMount("/dev/shm/recon/u/secret", "/etc/secret", read_only=True),
            VolumeMount("data", "/data"),
            TmpfsMount("/tmp", size_bytes=1 << 20),
        ),
        memory_bytes=64 << 20,
        nano_cpus=250_000_000,
        sandbox="abc",
        share_pid=True,
        read_only_rootfs=True,
        user="1000",
    )
    args = container_create_args(spec)
    host = args.host_config
    assert host["network_mode"] == host["ipc_mode"] == host["pid_mode"] == "container:abc"
    assert host["mem_limit"] == host["memswap_limit"] == 64 << 20
    assert host["nano_cpus"] == 250_000_000
    assert host["read_only"] is True
    assert host["mounts"] == [
        {
            "Type": "bind",
            "Source": "/dev/shm/recon/u/secret",
            "Target": "/etc/secret",
            "ReadOnly": True,
        },
        {"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": False},
        {"Type": "tmpfs", "Source": "", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 1 << 20}},
    ]
    container = args.container
    assert container["entrypoint"] == ["/bin/server"]
    assert container["command"] is None  # no args: the image's CMD is dropped with its ENTRYPOINT
    assert container["labels"]["recon.dev/sandbox-id"] == "abc"
    assert container["user"] == "1000"


def test_container_without_a_sandbox() -> None:
    args = container_create_args(ContainerSpec(name="solo", image="busybox", share_ipc=True))
    assert "network_mode" not in args.host_config
    assert "ipc_mode" not in args.host_config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        ("2026-11-22T10:51:44.276664123Z", datetime(2026, 11, 22, 10, 51, 44, 276664, UTC)),
        ("2026-11-22T10:51:44Z", datetime(2026, 11, 22, 10, 51, 44, tzinfo=UTC)),
        ("2026-11-22T12:51:44.5+02:00", datetime(2026, 11, 22, 10, 51, 44, 500000, UTC)),
    ],
)
def test_engine_times(text: str, expected: datetime | None) -> None:
    assert parse_engine_time(text) == expected


def test_log_timestamps() -> None:
    moment, rest = split_log_timestamp(b"2026-11-22T10:51:44.1234567Z hello world")
    assert moment == datetime(2026, 11, 22, 10, 51, 44, 123456, UTC)
    assert rest == b"hello world"


INSPECT: dict[str, Any] = {
    "Id": "f00d",
    "Name": "/recon_POD_web-0_shop_1234_0",
    "Created": "2026-11-22T10:00:00.1Z",
    "Image": "sha256:abc",
    "State": {
        "Status": "exited",
        "ExitCode": 137,
        "OOMKilled": True,
        "Error": "",
        "StartedAt": "2026-11-22T10:00:01.000000001Z",
        "FinishedAt": "2026-11-22T10:00:00.9Z",
    },
    "Config": {"Image": "recon.local/pause", "Labels": {"app": "web"}},
    "HostConfig": {
        "NetworkMode": "recon-shop",
        "Memory": 67108864,
        "NanoCpus": 0,
        "Mounts": [{"Type": "tmpfs", "Target": "/tmp"}],
    },
    "Mounts": [
        {
            "Type": "volume",
            "Name": "data",
            "Source": "/var/lib/docker/volumes/data/_data",
            "Destination": "/data",
            "RW": True,
        },
        {"Type": "bind", "Source": "/dev/shm/x", "Destination": "/etc/secret", "RW": False},
    ],
    "NetworkSettings": {
        "Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32769"}], "9090/tcp": None},
        "Networks": {"recon-shop": {"IPAddress": "172.18.0.2"}},
    },
}


def test_state_from_inspect() -> None:
    state = state_from_inspect(INSPECT)
    assert state.name == "recon_POD_web-0_shop_1234_0"
    assert state.status is ContainerStatus.EXITED
    assert (state.exit_code, state.oom_killed) == (137, True)
    # StartedAt after FinishedAt (the engine's quirk for quick exits) is clamped.
    assert state.started_at == state.finished_at
    assert state.ports == (PublishedPort(8080, "tcp", "127.0.0.1", 32769),)
    assert state.ip_address == "172.18.0.2"
    assert (state.memory_bytes, state.nano_cpus) == (67108864, None)
    assert state.mounts == (
        MountInfo("volume", "data", "/data", False),
        MountInfo("bind", "/dev/shm/x", "/etc/secret", True),
        MountInfo("tmpfs", "", "/tmp", False),
    )
    running = state_from_inspect({**INSPECT, "State": {**INSPECT["State"], "Status": "running"}})
    assert running.exit_code is None
    assert running.started_at is not None and running.started_at > running.finished_at  # type: ignore[operator]


def test_events() -> None:
    raw = {
        "Type": "container",
        "Action": "die",
        "Actor": {
            "ID": "f00d",
            "Attributes": {"name": "web", "image": "x", "exitCode": "3", "app": "web"},
        },
        "time": 1,
        "timeNano": 1_700_000_000_123_456_789,
    }
    event = event_from_raw(raw)
    assert event is not None
    assert (event.kind, event.container_id, event.name, event.exit_code) == (
        EventKind.DIED,
        "f00d",
        "web",
        3,
    )
    assert event.labels == {"app": "web"}
    assert event_from_raw({**raw, "Action": "exec_start: sh"}) is None
    assert event_from_raw({**raw, "Type": "network"}) is None


class _Response:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.reason = "reason"
        self.url = "http+docker://localhost/x"


def _api_error(status: int, explanation: str) -> Exception:
    response: Any = _Response(status)
    error: Exception = docker.errors.APIError("failed", response=response, explanation=explanation)
    return error


@pytest.mark.parametrize(
    ("op", "status", "explanation", "expected"),
    [
        (Op.CREATE, 404, "No such image: web:1", ImageNotPresentError),
        (Op.CREATE, 404, "network recon-x not found", NetworkNotFoundError),
        (Op.CONTAINER, 404, "No such container: web-image-app", ContainerNotFoundError),
        (Op.CREATE, 409, 'Conflict. The container name "/x" is already in use', ConflictError),
        (Op.EXEC, 409, "Container f00d is not running", ContainerNotRunningError),
        (Op.NETWORK, 403, "network x has active endpoints", ResourceInUseError),
        (Op.VOLUME, 409, "remove x: volume is in use", ResourceInUseError),
        (Op.START, 500, "port is already allocated", ContainerStartError),
        (Op.CREATE, 400, "invalid mount config", InvalidSpecError),
        (Op.PULL, 404, "manifest for x:1 not found: manifest unknown", ImageNotFoundError),
        (Op.PULL, 500, "Get https://x/v2/: connection refused", ImagePullError),
    ],
)
def test_error_translation(op: Op, status: int, explanation: str, expected: type) -> None:
    translated = translate(_api_error(status, explanation), op, "subject")
    assert type(translated) is expected
    assert explanation in str(translated)


def test_image_not_present_names_the_image() -> None:
    translated = translate(_api_error(404, "No such image: web:1"), Op.CREATE, "container-x")
    assert isinstance(translated, ImageNotPresentError)
    assert translated.ref == "web:1"


def test_connection_errors_mean_the_engine_is_unavailable() -> None:
    translated = translate(requests.exceptions.ConnectionError("refused"), Op.CONTAINER, "x")
    assert isinstance(translated, RuntimeUnavailableError)
    other = ValueError("not ours")
    assert translate(other, Op.CONTAINER, "x") is other
