"""Go durations (`time.ParseDuration`), the way Kubernetes flags and fields write them.

`30s`, `5m`, `1h30m`, `500ms`, `1.5h`, `0`: kubelet and kube-apiserver flags, Argo CD's retry
back-off and metav1.Duration fields all use this one grammar, so Recon parses it in one place.
"""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration; ValueError (naming the text) for anything else."""
    cleaned = (text or "").strip()
    if cleaned == "0":
        return 0.0
    parts = _PART.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h30m")
    return sum(float(n) * _SECONDS[u] for n, u in parts)
