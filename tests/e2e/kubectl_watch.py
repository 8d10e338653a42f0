"""`kubectl get -w` in the background, for end-to-end tests that assert the order of events.

Every event is kept with its type and object; Recon's store has one global revision counter,
so the `resourceVersion` of events from different watches (pods, ReplicaSets, Deployments)
can be compared to order them, which a real cluster does not promise.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.e2e.conftest import ReconServer, require_kubectl

__all__ = ["KubectlWatch", "WatchEvent"]

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    object: JSONDict

    @property
    def name(self) -> str:
        return str(self.object["metadata"]["name"])

    @property
    def revision(self) -> int:
        return int(self.object["metadata"]["resourceVersion"])

    @property
    def deleting(self) -> bool:
        return bool(self.object["metadata"].get("deletionTimestamp"))

    @property
    def ready(self) -> bool:
        conditions = (self.object.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class KubectlWatch:
    """`kubectl get RESOURCE -w --output-watch-events -o json` until `stop()`."""

    def __init__(self, server: ReconServer, namespace: str, resource: str) -> None:
        self._proc = subprocess.Popen(
            [
                require_kubectl(),
                "--kubeconfig",
                str(server.kubeconfig),
                "-n",
                namespace,
                "get",
                resource,
                "--watch",
                "--output-watch-events",
                "-o",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.events: list[WatchEvent] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        decoder = json.JSONDecoder()
        buffer = ""
        for line in self._proc.stdout:
            buffer += line
            while buffer.strip():
                try:
                    obj, end = decoder.raw_decode(buffer.lstrip())
                except ValueError:
                    break  # an object not yet complete
                buffer = buffer.lstrip()[end:]
                with self._lock:
                    self.events.append(WatchEvent(str(obj["type"]), obj["object"]))

    def snapshot(self) -> list[WatchEvent]:
        with self._lock:
            return list(self.events)

    def wait_for(
        self, condition: Callable[[list[WatchEvent]], bool], timeout: float = 60
    ) -> list[WatchEvent]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.snapshot()
            if condition(events):
                return events
            time.sleep(0.1)
        raise AssertionError(f"watch condition not met within {timeout} s: {self.summary()}")

    def summary(self) -> list[str]:
        return [
            f"{e.revision} {e.type} {e.name}{' deleting' if e.deleting else ''}"
            f"{' ready' if e.ready else ''}"
            for e in self.snapshot()
        ]

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)
        self._reader.join(5)
