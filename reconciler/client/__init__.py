"""One async Kubernetes client interface: in-process (embedded plane) and HTTP (kubeconfig)."""
