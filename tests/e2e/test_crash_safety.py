"""Every write the API acknowledged survives `kill -9` of the server."""

from __future__ import annotations

import random
import threading
import time

import pytest

from tests.e2e.conftest import ReconServer

pytestmark = pytest.mark.e2e

CMS = "/api/v1/namespaces/default/configmaps"


def test_acknowledged_writes_survive_kill_9(fresh_server: ReconServer) -> None:
    acknowledged: dict[str, str] = {}  # name -> last acknowledged value of data.v
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            name = f"c{i % 40}"
            value = str(i)
            try:
                if name in acknowledged:
                    status, _ = fresh_server.request(
                        "PATCH",
                        f"{CMS}/{name}",
                        {"data": {"v": value}},
                        content_type="application/merge-patch+json",
                    )
                    ok = status == 200
                else:
                    status, _ = fresh_server.request(
                        "POST",
                        CMS,
                        {
                            "apiVersion": "v1",
                            "kind": "ConfigMap",
                            "metadata": {"name": name},
                            "data": {"v": value},
                        },
                    )
                    ok = status == 201
            except OSError:
                return  # the server died mid-request: this write was never acknowledged
            if ok:
                acknowledged[name] = value

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(random.uniform(1.0, 2.5))
    fresh_server.kill9()
    stop.set()
    thread.join(15)
    assert len(acknowledged) > 10, "the writer loop made too little progress to mean anything"

    fresh_server.start()
    status, body = fresh_server.request("GET", CMS)
    assert status == 200
    live = {
        item["metadata"]["name"]: item["data"]["v"]
        for item in body["items"]
        if item["metadata"]["name"] != "kube-root-ca.crt"  # the root CA publisher's, not ours
    }
    newer = []
    for name, value in acknowledged.items():
        # The one write in flight at the kill may have committed without being acknowledged:
        # its object may be newer than acknowledged, never older, and only that one.
        assert name in live, f"{name} was acknowledged but is gone"
        assert int(live[name]) >= int(value), (name, live[name], value)
        if live[name] != value:
            newer.append(name)
    assert len(newer) <= 1, newer
