#!/usr/bin/env bash
# `make demo`: the embedded control plane in the foreground, with how to point kubectl at it.
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir="$1"
listen="${RECON_LISTEN:-127.0.0.1:6443}"
mkdir -p "$data_dir"
cat <<MSG
Recon demo: serving the embedded Kubernetes-compatible control plane on https://$listen
  data:        $data_dir
  kubeconfig:  $data_dir/kubeconfig   (written on first start)

In another terminal:
  export KUBECONFIG=$data_dir/kubeconfig
  kubectl get namespaces
  kubectl create configmap hello --from-literal=greeting=hi
  kubectl get configmaps -w

Ctrl-C stops the server; its state stays in $data_dir.
MSG
exec .venv/bin/recon serve --data-dir "$data_dir" --listen "$listen"
