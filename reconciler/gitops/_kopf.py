"""kopf, imported without the Kubernetes client libraries it would otherwise load.

kopf recognises the model classes of the `kubernetes` and `kubernetes_asyncio` clients when
those are installed (`kopf._cogs.helpers.thirdparty` imports them at import time). Recon
never hands kopf such objects, and importing the `kubernetes` client costs ≈19 MB of RSS in
`recon serve` (it is in the dev dependencies, for the e2e tests of Python clients). So they
are hidden from kopf's import only: anyone importing them later gets them as usual.
"""

from __future__ import annotations

import sys

__all__ = ["kopf"]

_CLIENTS = ("kubernetes", "kubernetes_asyncio")

_hidden = [name for name in _CLIENTS if name not in sys.modules]
for _name in _hidden:
    sys.modules[_name] = None  # type: ignore[assignment]  # `import` raises ImportError
try:
    import kopf
finally:
    for _name in _hidden:
        if _name in sys.modules and sys.modules[_name] is None:
            del sys.modules[_name]
