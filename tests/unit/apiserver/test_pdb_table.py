"""`kubectl get pdb`: the columns and cells of upstream's PodDisruptionBudget printer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.apiserver.tables import build_table, table_columns

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_pdb_columns() -> None:
    columns = table_columns("PodDisruptionBudget")
    assert [(c["name"], c["type"]) for c in columns] == [
        ("Name", "string"),
        ("Min Available", "string"),
        ("Max Unavailable", "string"),
        ("Allowed Disruptions", "integer"),
        ("Age", "string"),
    ]


@pytest.mark.parametrize(
    ("spec", "status", "cells"),
    [
        ({"minAvailable": 2}, {"disruptionsAllowed": 1}, ["web", "2", "N/A", 1, "5m"]),
        ({"maxUnavailable": "25%"}, {"disruptionsAllowed": 0}, ["web", "N/A", "25%", 0, "5m"]),
        ({"minAvailable": 0}, None, ["web", "0", "N/A", 0, "5m"]),  # no status yet
    ],
)
def test_pdb_cells(spec: dict[str, Any], status: dict[str, Any] | None, cells: list[Any]) -> None:
    pdb: dict[str, Any] = {
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "creationTimestamp": "2026-03-01T11:55:00Z",
        },
        "spec": spec,
    }
    if status is not None:
        pdb["status"] = status
    assert build_table("PodDisruptionBudget", [pdb], NOW)["rows"][0]["cells"] == cells
