#!/usr/bin/env bash
# `make demo`: the embedded control plane and node agent in the foreground, serving the
# repo-template app (a web Deployment + Service + ConfigMap and a CronJob) on Docker.
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir="$1"
listen="${RECON_LISTEN:-127.0.0.1:6443}"
mkdir -p "$data_dir"
bash scripts/setup-docker.sh
export KUBECONFIG="$data_dir/kubeconfig"

.venv/bin/recon serve --data-dir "$data_dir" --listen "$listen" \
    --pause-image recon.local/pause:latest --proxy-image recon.local/busybox:latest &
server=$!
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"' INT TERM
for _ in $(seq 1 100); do
    kubectl get --raw /readyz >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || exit 1
    sleep 0.1
done
.venv/bin/recon apply --kubeconfig "$KUBECONFIG" repo-template
kubectl -n demo rollout status deployment/web --timeout=120s || true
kubectl -n demo get pods -o wide
cat <<MSG

Recon demo: the control plane is on https://$listen and runs repo-template/ on Docker.
  data:        $data_dir
  kubeconfig:  $KUBECONFIG

In another terminal:
  export KUBECONFIG=$KUBECONFIG
  kubectl -n demo get pods,deployments,cronjobs,jobs
  kubectl -n demo get pod -l app=web -o jsonpath='{.items[0].metadata.annotations.recon\\.dev/published-ports}'
      # {"8080/TCP": PORT}: curl http://127.0.0.1:PORT/
  kubectl -n demo scale deployment/web --replicas=3

Ctrl-C stops the server; the pods keep running and are re-adopted at the next start.
MSG
wait "$server"
