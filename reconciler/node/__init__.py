"""The node agent (kubelet): runs the pods bound to this host through a container runtime."""
