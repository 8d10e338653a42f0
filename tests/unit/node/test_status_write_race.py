"""A condition another client writes while the node agent is writing the pod's status is
not dropped (the agent's write is conditional on the copy it built the status from)."""

from __future__ import annotations

from typing import Any

from tests.unit.node.conftest import NodeHarness, condition

JSONDict = dict[str, Any]


async def test_a_condition_written_meanwhile_survives_the_agents_status_write(
    node: NodeHarness,
) -> None:
    client = node.client
    real_patch = client.patch
    raced: list[str] = []

    async def patch_after_a_rival(*args: Any, **kwargs: Any) -> JSONDict:
        """Just before the agent's first status write for `gated`, another client adds
        the gate's condition (the agent has not seen it yet)."""
        _, kind, name, body = args[:4]
        agents = kwargs.get("subresource") == "status" and "containerStatuses" in (
            body.get("status") or {}
        )
        if kind == "Pod" and name == "gated" and agents and not raced:
            raced.append(name)
            gate = {"type": "example.com/gate", "status": "True"}
            current = await client.get("v1", "Pod", "gated", "default")
            conditions = [*((current.get("status") or {}).get("conditions") or []), gate]
            await real_patch(
                "v1",
                "Pod",
                "gated",
                {"status": {"conditions": conditions}},
                namespace="default",
                subresource="status",
            )
        return await real_patch(*args, **kwargs)

    client.patch = patch_after_a_rival  # type: ignore[method-assign]
    try:
        await node.create_pod(
            "gated",
            {
                "readinessGates": [{"conditionType": "example.com/gate"}],
                "containers": [{"name": "c", "image": "fake/script", "args": ["wait"]}],
            },
        )
        pod = await node.wait_pod("gated", lambda p: condition(p, "Ready") == "True")
    finally:
        client.patch = real_patch  # type: ignore[method-assign]
    assert raced == ["gated"]
    assert condition(pod, "example.com/gate") == "True"
