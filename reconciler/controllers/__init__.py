"""Reconcile loops that act on what the API server stores (GC, namespaces, workloads)."""
