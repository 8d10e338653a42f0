"""An idle watch that asked for bookmarks gets them (kopf reconnects after 70 s of silence)."""

from __future__ import annotations

from pathlib import Path

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.http import HttpClient


async def test_idle_watch_receives_bookmarks_with_the_current_version(tmp_path: Path) -> None:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0, bookmark_interval=0.2))
    await server.start()
    client = HttpClient.from_kubeconfig(server.kubeconfig)
    try:
        listed = await client.list("v1", "ConfigMap", "default")
        events = []
        async for event in client.watch(
            "v1",
            "ConfigMap",
            "default",
            resource_version=listed.resource_version,
            timeout=2,
            bookmarks=True,
        ):
            events.append(event)
            if len(events) == 2:
                break
        assert [e.type for e in events] == ["BOOKMARK", "BOOKMARK"]
        assert events[0].object["metadata"]["resourceVersion"] == str(server.store.revision)
    finally:
        await client.close()
        await server.stop()
