"""A small kopf operator used by the end-to-end test (test code, not part of Recon)."""

from __future__ import annotations

import os
from typing import Any

import kopf


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = 0
    settings.watching.server_timeout = 30


@kopf.on.create("example.com", "v1", "widgets")
def created(spec: Any, patch: kopf.Patch, **_: Any) -> None:
    patch.status["phase"] = f"created-{spec.get('size')}"


@kopf.on.update("example.com", "v1", "widgets")
def updated(spec: Any, patch: kopf.Patch, **_: Any) -> None:
    patch.status["phase"] = f"updated-{spec.get('size')}"


@kopf.on.delete("example.com", "v1", "widgets")
def deleted(name: str, **_: Any) -> None:
    with open(os.environ["KOPF_TEST_LOG"], "a") as fh:
        fh.write(f"deleted {name}\n")
