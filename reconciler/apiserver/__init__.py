"""The Kubernetes-compatible REST API server of the embedded control plane."""
