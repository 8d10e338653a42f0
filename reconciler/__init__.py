"""Recon: single-host GitOps with an embedded Kubernetes-compatible control plane."""
