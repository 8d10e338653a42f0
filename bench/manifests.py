"""Manifest benchmarks: validation, three-way diff, and `recon diff` next to their peers.

    .venv/bin/python -m bench.manifests [--documents 3000] [--deployments 5000] [--diff 1000]

1. validation throughput (documents/s, one core) next to the `kubernetes-validate` command on
   the same files;
2. three-way apply computation for Deployments (objects/s, pure, no server);
3. `recon diff` of N manifests against a `recon serve` holding them, next to `kubectl diff -f`
   of the same files against the same server.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.apiserver import RESULTS, Server, free_port
from reconciler.manifests.loader import load_paths
from reconciler.merge.three_way import apply_three_way, desired_with_annotation, last_applied_of
from reconciler.schema.definitions import load
from reconciler.schema.manifest_validation import ManifestValidator
from reconciler.schema.patchmeta import PatchMeta


def deployment(i: int, image: str = "web:1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"app-{i}", "namespace": "default", "labels": {"app": f"app-{i}"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": f"app-{i}"}},
            "template": {
                "metadata": {"labels": {"app": f"app-{i}"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": image,
                            "ports": [{"containerPort": 8080}],
                            "env": [
                                {"name": "MODE", "value": "prod"},
                                {"name": "LEVEL", "value": "info"},
                            ],
                            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                            "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
                        }
                    ]
                },
            },
        },
    }


def documents(n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            out.append(deployment(i))
        elif kind == 1:
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": f"svc-{i}", "namespace": "default"},
                    "spec": {
                        "selector": {"app": f"app-{i}"},
                        "ports": [{"port": 80, "targetPort": 8080}],
                    },
                }
            )
        else:
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"cm-{i}", "namespace": "default"},
                    "data": {"key": "value", "other": str(i)},
                }
            )
    return out


def write_files(folder: Path, docs: list[dict[str, Any]], per_file: int = 50) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in range(0, len(docs), per_file):
        path = folder / f"part-{start // per_file:04d}.yaml"
        path.write_text(yaml.safe_dump_all(docs[start : start + per_file]))
        paths.append(path)
    return paths


def bench_validation(n: int, tmp: Path) -> dict[str, float]:
    folder = tmp / "validate"
    paths = write_files(folder, documents(n))
    ManifestValidator()  # compile and load schemas outside the timing, like a warm server
    started = time.perf_counter()
    loaded = load_paths([folder])
    issues = ManifestValidator().validate(loaded.manifests)
    ours = time.perf_counter() - started
    assert not issues and not loaded.errors, issues[:3]
    peer = shutil.which("kubernetes-validate") or str(
        Path(sys.executable).parent / "kubernetes-validate"
    )
    started = time.perf_counter()
    subprocess.run([peer, "--strict", *map(str, paths)], capture_output=True, check=False)
    theirs = time.perf_counter() - started
    return {
        "documents": n,
        "recon_docs_per_s": n / ours,
        "kubernetes_validate_docs_per_s": n / theirs,
    }


def bench_three_way(n: int) -> dict[str, float]:
    meta = PatchMeta.for_definition(load(), "io.k8s.api.apps.v1.Deployment")
    triples = []
    for i in range(n):
        last = deployment(i)
        live = desired_with_annotation(last)
        live["status"] = {"replicas": 2}
        live["spec"]["template"]["spec"]["containers"][0]["env"].append(
            {"name": "INJECTED", "value": "x"}
        )
        triples.append((live, deployment(i, image="web:2")))
    started = time.perf_counter()
    for live, desired in triples:
        apply_three_way(last_applied_of(live), desired, live, meta)
    elapsed = time.perf_counter() - started
    return {"deployments": n, "three_way_objects_per_s": n / elapsed}


def bench_diff(n: int, tmp: Path) -> dict[str, float]:
    server = Server(tmp / "data", free_port())
    server.data_dir.mkdir()
    server.start()
    try:
        folder = tmp / "diff"
        docs = documents(n)
        paths = write_files(folder, docs)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "reconciler.cli",
                "apply",
                str(folder),
                "--kubeconfig",
                server.kubeconfig,
            ],
            capture_output=True,
            check=True,
        )
        changed = [
            deployment(i, image="web:2") if d["kind"] == "Deployment" and i % 10 == 0 else d
            for i, d in enumerate(docs)
        ]
        shutil.rmtree(folder)
        write_files(folder, changed)
        started = time.perf_counter()
        ours = subprocess.run(
            [
                sys.executable,
                "-m",
                "reconciler.cli",
                "diff",
                str(folder),
                "--kubeconfig",
                server.kubeconfig,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        recon_s = time.perf_counter() - started
        started = time.perf_counter()
        theirs = subprocess.run(
            ["kubectl", "--kubeconfig", server.kubeconfig, "diff", "-f", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        kubectl_s = time.perf_counter() - started
        assert ours.returncode == 1 and theirs.returncode == 1, (ours.stderr, theirs.stderr)
        del paths
        return {
            "manifests": n,
            "recon_diff_s": recon_s,
            "kubectl_diff_s": kubectl_s,
            "speedup": kubectl_s / recon_s,
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=3000)
    parser.add_argument("--deployments", type=int, default=5000)
    parser.add_argument("--diff", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "validation": bench_validation(args.documents, Path(tmp)),
            "three_way": bench_three_way(args.deployments),
            "diff": bench_diff(args.diff, Path(tmp)),
        }
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"manifests-{stamp}.json").write_text(json.dumps(results, indent=2))
    v, t, d = results["validation"], results["three_way"], results["diff"]
    print("| measure | recon | peer (same run) | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    print(
        f"| validation ({v['documents']:.0f} docs, one core) | {v['recon_docs_per_s']:.0f} "
        f"docs/s | kubernetes-validate: {v['kubernetes_validate_docs_per_s']:.0f} docs/s | "
        f"{v['recon_docs_per_s'] / v['kubernetes_validate_docs_per_s']:.0f}x | ≥ 3,000/s | "
        f"{'yes' if v['recon_docs_per_s'] >= 3000 else 'no'} |"
    )
    print(
        f"| three-way of {t['deployments']:.0f} Deployments | "
        f"{t['three_way_objects_per_s']:.0f} objects/s | — | — | ≥ 3,000/s | "
        f"{'yes' if t['three_way_objects_per_s'] >= 3000 else 'no'} |"
    )
    print(
        f"| diff of {d['manifests']:.0f} manifests | {d['recon_diff_s']:.2f} s | kubectl diff: "
        f"{d['kubectl_diff_s']:.2f} s | {d['speedup']:.1f}x faster | ≥ 5x | "
        f"{'yes' if d['speedup'] >= 5 else 'no'} |"
    )


if __name__ == "__main__":
    main()
