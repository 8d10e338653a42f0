"""The API server's validators of built-in kinds: `schema.kind_validators` (shared with
`recon validate`), re-exported where the server has always found them."""

from __future__ import annotations

from reconciler.schema.kind_validators import KindValidators, reachable

__all__ = ["KindValidators", "reachable"]
