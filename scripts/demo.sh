#!/usr/bin/env bash
# `make demo`: the embedded control plane and node agent in the foreground, serving the
# repo-template app (a web Deployment + Service + ConfigMap and a CronJob) on Docker, deployed
# by `git push` to a repository Recon hosts.
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
# git push to deploy: a hosted repository with an Application on it, and repo-template/
# pushed to it (the push output streams the sync and the rollout).
if [ ! -d "$data_dir/repos/demo.git" ]; then
    .venv/bin/recon repo create demo --data-dir "$data_dir"
fi
work="$data_dir/demo-src"
if [ ! -d "$work/.git" ]; then
    rm -rf "$work"
    .venv/bin/recon init "$work" >/dev/null
    git -C "$work" remote add recon "$data_dir/repos/demo.git"
fi
git -C "$work" push recon main || true
.venv/bin/recon status demo --data-dir "$data_dir" || true
cat <<MSG

Recon demo: the control plane is on https://$listen and deploys $work on Docker.
  data:        $data_dir
  kubeconfig:  $KUBECONFIG
  the app:     curl http://127.0.0.1:30080/   (NodePort)
               curl -H "Host: web.localhost" http://127.0.0.1/   (Ingress)

In another terminal:
  export KUBECONFIG=$KUBECONFIG PATH=$PWD/.venv/bin:\$PATH
  cd $work && edit web/deployment.yaml && git commit -am change && git push recon main
  recon app list;  recon status demo;  recon history demo;  recon diff demo
  kubectl -n demo get pods,deployments,cronjobs,jobs
  kubectl -n demo delete deployment web     # drift: healed within the interval

Ctrl-C stops the server; the pods keep running and are re-adopted at the next start.
MSG
wait "$server"
