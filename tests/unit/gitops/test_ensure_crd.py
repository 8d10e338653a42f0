"""The Application CRD: installed when missing, brought up to date when an older Recon's
is there (its schema would otherwise prune the fields this one added)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.errors import InvalidError
from reconciler.client.inprocess import InProcessClient
from reconciler.gitops.operator import CRD_FILE, ensure_crd

CRD = "apiextensions.k8s.io/v1"
NAME = "applications.recon.dev"


async def test_installs_then_updates_an_older_crd(tmp_path: Path) -> None:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    try:
        client = InProcessClient(server.service)
        older = yaml.safe_load(CRD_FILE.read_text())
        policy = older["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
            "properties"
        ]["syncPolicy"]["properties"]
        del policy["syncOptions"]
        await client.create(older)
        await ensure_crd(client)
        live = await client.get(CRD, "CustomResourceDefinition", NAME)
        assert live["spec"] == yaml.safe_load(CRD_FILE.read_text())["spec"]
        version = live["metadata"]["resourceVersion"]
        await ensure_crd(client)  # already current: not written again
        again = await client.get(CRD, "CustomResourceDefinition", NAME)
        assert again["metadata"]["resourceVersion"] == version
    finally:
        await server.stop()


async def test_the_schema_takes_the_sync_options_recon_honours(tmp_path: Path) -> None:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    try:
        client = InProcessClient(server.service)
        await ensure_crd(client)
        app = {
            "apiVersion": "recon.dev/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "shop", "namespace": "default"},
            "spec": {
                "source": {"repoURL": "file:///srv/shop.git"},
                "destination": {"namespace": "shop"},
                "syncPolicy": {
                    "syncOptions": [
                        "CreateNamespace=true",
                        "ServerSideApply=true",
                        "PrunePropagationPolicy=orphan",
                        "Validate=false",
                        "FailOnSharedResource=true",
                        "ApplyOutOfSyncOnly=true",
                        "Replace=true",
                        "SkipDryRunOnMissingResource=true",
                    ]
                },
            },
        }
        created = await client.create(app)
        assert created["spec"]["syncPolicy"]["syncOptions"][1] == "ServerSideApply=true"
        assert created["spec"]["syncPolicy"]["syncOptions"][-1] == (
            "SkipDryRunOnMissingResource=true"
        )
        for wrong in ("Prune=confirm", "PrunePropagationPolicy=Foreground", "Validate=no"):
            app["metadata"]["name"] = "other"
            app["spec"]["syncPolicy"]["syncOptions"] = [wrong]
            with pytest.raises(InvalidError):
                await client.create(app)
    finally:
        await server.stop()
