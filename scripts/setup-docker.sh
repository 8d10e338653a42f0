#!/usr/bin/env bash
# Make a Docker engine available on a fresh Debian machine (as root) and build the images the
# node agent's tests and the demo use. No public registry is reachable here, so images are
# made locally from Debian's busybox-static:
#   recon.local/busybox:latest   busybox with its applets (sh, httpd, nc, sleep, wget, ...)
#   recon.local/pause:latest     the pod sandbox: sleeps forever
# Idempotent: does nothing that is already done.
set -euo pipefail

log() { echo "setup-docker: $*" >&2; }

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        log "please install: ${need[*]}"; exit 1
    fi
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    mkdir -p /var/log
    (setsid dockerd >/var/log/recon-dockerd.log 2>&1 &)
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    docker info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/recon-dockerd.log"; exit 1; }
fi

build_busybox() {
    local dir
    dir=$(mktemp -d)
    mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc" "$dir/www" "$dir/proc" "$dir/sys" "$dir/dev"
    cp /bin/busybox "$dir/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
    done
    echo "root:x:0:0:root:/root:/bin/sh" > "$dir/etc/passwd"
    echo "nobody:x:65534:65534:nobody:/:/bin/sh" >> "$dir/etc/passwd"
    echo "root:x:0:" > "$dir/etc/group"
    chmod 1777 "$dir/tmp"
    tar -C "$dir" -c . | docker import \
        -c 'ENV PATH=/bin' -c 'CMD ["sh"]' - recon.local/busybox:latest >/dev/null
    tar -C "$dir" -c . | docker import \
        -c 'ENV PATH=/bin' -c 'ENTRYPOINT ["/bin/sleep","2147483647"]' - recon.local/pause:latest >/dev/null
    rm -rf "$dir"
}

if ! docker image inspect recon.local/busybox:latest >/dev/null 2>&1 \
    || ! docker image inspect recon.local/pause:latest >/dev/null 2>&1; then
    log "building recon.local/busybox and recon.local/pause from busybox-static"
    build_busybox
fi
log "docker ready"
