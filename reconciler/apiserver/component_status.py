"""`kubectl get componentstatuses` (`cs`): how the control plane's parts are doing.

Upstream's API server answers this deprecated (v1.19+) but still served read-only kind by
probing the scheduler, the controller manager and each etcd member. Recon's parts live in
one process: the store is a SQLite file (listed as `etcd-0`, the name scripts and
tutorials look for), and the scheduler and the other controllers are in-process workers
whose owner (`embedded.py`) says how they are (`ApiServer.components`). Nothing is
stored; each read asks again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

JSONDict = dict[str, Any]

DEPRECATION = "v1 ComponentStatus is deprecated in v1.19+"
STORE_COMPONENT = "etcd-0"

# name -> None when healthy, else what is wrong
Components = Callable[[], Mapping[str, str | None]]


def component_status(name: str, problem: str | None) -> JSONDict:
    condition: JSONDict = {"type": "Healthy", "status": "True" if problem is None else "False"}
    if problem is None:
        condition["message"] = "ok"
    else:
        condition["error"] = problem
    return {
        "kind": "ComponentStatus",
        "apiVersion": "v1",
        "metadata": {"name": name},
        "conditions": [condition],
    }


def component_status_list(found: Mapping[str, str | None], revision: int) -> JSONDict:
    return {
        "kind": "ComponentStatusList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": str(revision)},
        "items": [component_status(name, found[name]) for name in sorted(found)],
    }
