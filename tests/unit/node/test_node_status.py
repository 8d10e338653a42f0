"""The Node's capacity as the scheduler reads it: `--max-pods` is what it admits."""

from __future__ import annotations

from click.testing import CliRunner

from reconciler.cli.main import cli
from reconciler.node.context import NodeSettings
from reconciler.node.node_status import node_status
from reconciler.runtime.base import EngineInfo

INFO = EngineInfo("docker", "26.1", "id", 2, 4 * 1024**3, "linux", "6.1")


def test_capacity_has_kubelets_default_of_110_pods() -> None:
    status = node_status(NodeSettings("host"), INFO, "docker", "t0", {})
    assert status["capacity"] == status["allocatable"]
    assert status["capacity"]["pods"] == "110"
    assert status["capacity"]["cpu"] == "2"
    assert status["capacity"]["memory"] == f"{4 * 1024**2}Ki"


def test_max_pods_sets_the_pods_capacity() -> None:
    status = node_status(NodeSettings("host", max_pods=2500), INFO, "memory", "t0", {})
    assert status["allocatable"]["pods"] == "2500"


def test_serve_rejects_a_max_pods_below_one() -> None:
    result = CliRunner().invoke(cli, ["serve", "--max-pods", "0"])
    assert result.exit_code == 2
    assert "--max-pods" in result.output
