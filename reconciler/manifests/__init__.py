"""Loading manifests from files (file:line kept), kustomize rendering, ordering."""
