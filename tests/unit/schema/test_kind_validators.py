"""Compiled validators are shared by every `KindValidators` over the same definitions: in
`recon serve` the API server's and a sync's render are one set (each compiled Deployment
schema is ≈0.5 MB of RSS), and only over the same definitions."""

from __future__ import annotations

import gc

from reconciler.manifests.loader import Manifest, Source
from reconciler.schema import definitions, kind_validators
from reconciler.schema.definitions import Definitions
from reconciler.schema.kind_validators import KindValidators
from reconciler.schema.manifest_validation import ManifestValidator

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"


def test_instances_over_the_same_definitions_share_what_they_compiled() -> None:
    strict = definitions.load(strict=True)
    first, second = KindValidators(strict), KindValidators(strict)
    assert first.for_definition(DEPLOYMENT) is second.for_definition(DEPLOYMENT)


def test_other_definitions_compile_their_own() -> None:
    strict = definitions.load(strict=True)
    lenient = definitions.load()
    copy = Definitions(strict.version, strict.strict, dict(strict.defs))
    ours = KindValidators(strict).for_definition(DEPLOYMENT)
    assert KindValidators(lenient).for_definition(DEPLOYMENT) is not ours
    assert KindValidators(copy).for_definition(DEPLOYMENT) is not ours


def test_the_render_uses_what_the_api_server_compiled() -> None:
    """The API server builds `KindValidators(definitions.load(version, strict=True))`."""
    server = KindValidators(definitions.load(None, strict=True))
    compiled = server.for_definition(DEPLOYMENT)
    validator = ManifestValidator()
    deployment = Manifest(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}},
        Source("web.yaml", 1, 0),
    )
    assert validator._validator_for(deployment) is compiled


def test_what_was_compiled_goes_with_its_definitions() -> None:
    strict = definitions.load(strict=True)
    gone = Definitions(strict.version, strict.strict, dict(strict.defs))
    key = id(gone)
    KindValidators(gone).for_definition("io.k8s.api.core.v1.ConfigMap")
    assert key in kind_validators._SHARED
    del gone
    gc.collect()
    assert key not in kind_validators._SHARED
