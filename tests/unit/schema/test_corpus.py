"""The validation corpus: valid manifests pass, invalid ones give exactly the expected lines.

Also the evidence for using a Rust validator: jsonschema-rs and the reference Python
`jsonschema` agree on which fields fail, for every built-in object of the corpus.
"""

from __future__ import annotations

import os
from pathlib import Path

import jsonschema
import pytest

from reconciler.cli.validate import collect_errors, default_schema_dirs
from reconciler.manifests.loader import load_paths
from reconciler.schema.definitions import load
from reconciler.schema.validation import DefinitionValidators, format_path

CORPUS = Path(__file__).parents[2] / "corpus"
INVALID = sorted(p for p in (CORPUS / "invalid").iterdir() if p.suffix in (".yaml", ".json"))
VALID = sorted((CORPUS / "valid").iterdir())


@pytest.fixture(autouse=True)
def in_corpus() -> object:
    before = os.getcwd()
    os.chdir(CORPUS)
    yield
    os.chdir(before)


def test_the_corpus_is_big_enough() -> None:
    assert len(INVALID) + len(VALID) >= 40


@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
def test_valid_manifests_pass(path: Path) -> None:
    count, errors = collect_errors([str(path.relative_to(CORPUS))], None, default_schema_dirs())
    assert errors == [] and count > 0


@pytest.mark.parametrize("path", INVALID, ids=[p.name for p in INVALID])
def test_invalid_manifests_give_the_expected_errors(path: Path) -> None:
    expected = [
        line
        for line in path.with_suffix(".expected").read_text().splitlines()
        if not line.endswith(("errors", "valid"))
    ]
    _, errors = collect_errors([str(path.relative_to(CORPUS))], None, default_schema_dirs())
    assert errors == expected
    assert expected, f"{path.name} must be invalid"


def _our_paths(validators: DefinitionValidators, name: str, obj: dict) -> set[str]:
    out = set()
    for err in validators.for_definition(name).errors(obj):
        parts = err.parts[:-1] if err.unknown_field else err.parts
        out.add(format_path(parts))
    return out


def test_rust_and_python_validators_agree_on_every_corpus_object() -> None:
    defs = load(strict=True)
    kinds = {(g.api_version, g.kind): n for g, n in defs.kinds().items()}
    ours = DefinitionValidators(defs)
    checked = 0
    for path in [*VALID, *INVALID]:
        for m in load_paths([path]).manifests:
            name = kinds.get((m.api_version, m.kind))
            if name is None:
                continue
            reference = jsonschema.Draft202012Validator(
                {"$ref": f"#/$defs/{name}", "$defs": defs.defs}
            )
            theirs = {format_path(list(e.absolute_path)) for e in reference.iter_errors(m.obj)}
            assert _our_paths(ours, name, m.obj) == theirs, (path.name, m.name)
            checked += 1
    assert checked >= 40
