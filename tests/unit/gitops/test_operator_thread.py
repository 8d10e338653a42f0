"""The Application operator on its own thread (`recon serve`): its handlers' work runs on the
server's loop, and stopping it leaves the server's own tasks alone."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.inprocess import InProcessClient
from reconciler.gitops.operator import FINALIZER, ensure_crd
from reconciler.gitops.operator_thread import OperatorThread

APP = {
    "apiVersion": "recon.dev/v1alpha1",
    "kind": "Application",
    "metadata": {"name": "shop", "namespace": "default"},
    "spec": {
        "source": {"repoURL": "file:///srv/shop.git"},
        "destination": {"namespace": "shop"},
    },
}


class RecordingTracker:
    """Stands in for the AppManager: notes which thread each call ran on."""

    def __init__(self) -> None:
        self.tracked: list[tuple[str, int]] = []
        self.deleted_on: list[tuple[str, int]] = []
        self.seen = asyncio.Event()
        self.gone = asyncio.Event()

    def track(self, obj: dict[str, Any]) -> None:
        self.tracked.append((obj["metadata"]["name"], threading.get_ident()))
        self.seen.set()

    async def deleted(self, obj: dict[str, Any]) -> list[str]:
        self.deleted_on.append((obj["metadata"]["name"], threading.get_ident()))
        self.gone.set()
        return []


async def test_handlers_run_on_the_servers_loop_and_stop_spares_its_tasks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    tracker = RecordingTracker()
    operator = OperatorThread(tracker, server.kubeconfig)
    try:
        client = InProcessClient(server.service)
        await ensure_crd(client)
        await operator.start()
        assert operator.running
        assert not [r for r in caplog.records if "OS signals" in r.getMessage()]
        started_after = asyncio.get_running_loop().create_task(asyncio.sleep(3600))

        await client.create(APP)
        await asyncio.wait_for(tracker.seen.wait(), 20)
        here = threading.get_ident()
        assert tracker.tracked[0] == ("shop", here)

        async def finalized() -> bool:
            live = await client.get("recon.dev/v1alpha1", "Application", "shop", "default")
            return FINALIZER in (live["metadata"].get("finalizers") or [])

        for _ in range(200):
            if await finalized():
                break
            await asyncio.sleep(0.05)
        assert await finalized()
        await client.delete("recon.dev/v1alpha1", "Application", "shop", "default")
        await asyncio.wait_for(tracker.gone.wait(), 20)
        assert tracker.deleted_on == [("shop", here)]

        await operator.stop()
        assert not operator.running
        assert operator.error is None
        assert not started_after.cancelled() and not started_after.done()
        started_after.cancel()
    finally:
        await operator.stop()
        await server.stop()
