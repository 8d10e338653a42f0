"""`make bench`: every benchmark, one after the other (each prints its own table)."""

from __future__ import annotations

import importlib


def main() -> None:
    for name in ("bench.apiserver", "bench.manifests"):
        print(f"== {name}")
        importlib.import_module(name).main()


if __name__ == "__main__":
    main()
