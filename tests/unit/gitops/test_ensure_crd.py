"""The Application CRD: installed when missing, brought up to date when an older Recon's
is there (its schema would otherwise prune the fields this one added)."""

from __future__ import annotations

from pathlib import Path

import yaml

from reconciler.apiserver.server import ApiServer, ServerOptions
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
