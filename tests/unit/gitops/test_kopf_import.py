"""kopf is imported without the Kubernetes client libraries (≈19 MB of RSS in recon serve)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import reconciler.gitops.operator
print("kubernetes" in sys.modules, "kubernetes_asyncio" in sys.modules)
try:
    import kubernetes.client
except ImportError:
    print("not installed")
else:
    print("importable later")
"""


def test_the_operator_does_not_load_the_kubernetes_client_and_leaves_it_importable() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    loaded, after = result.stdout.splitlines()
    assert loaded == "False False"
    assert after in ("importable later", "not installed")
