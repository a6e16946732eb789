#!/usr/bin/env bash
# Installs and starts everything symbi's components use on a Debian 12 host:
# Docker (dockerd 20.10, no bridge, no iptables) with the runc and runsc (gVisor)
# runtimes, nats-server, busybox-static and debootstrap (sandbox images), PostgreSQL.
# Idempotent: installed packages are skipped, a running dockerd is reused.
# Runs as root (or through sudo). Never pulls from a container registry.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

log() { printf '[setup-host] %s\n' "$*" >&2; }

PACKAGES=(docker.io runc runsc nats-server busybox-static debootstrap iproute2 curl
          ca-certificates postgresql jq procps)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Docker daemon -------------------------------------------------------------------------
# Containers never get a network unless policy grants it: no bridge, no iptables, no
# forwarding or masquerading. runsc is registered as a runtime with networking off (a
# sandbox gets its own loopback only), the ptrace platform (the KVM platform of Debian's
# runsc hangs on this kind of host) and --oci-seccomp, so the seccomp profile symbi puts in
# each container is also applied inside the gVisor sandbox (runsc ignores it otherwise).
$SUDO mkdir -p /etc/docker
DAEMON_JSON='{
  "bridge": "none",
  "iptables": false,
  "ip-forward": false,
  "ip-masq": false,
  "runtimes": {
    "runsc": { "path": "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--platform=ptrace", "--oci-seccomp"] }
  }
}'
if [ ! -f /etc/docker/daemon.json ] || [ "$(cat /etc/docker/daemon.json)" != "$DAEMON_JSON" ]; then
  log "writing /etc/docker/daemon.json"
  echo "$DAEMON_JSON" | $SUDO tee /etc/docker/daemon.json >/dev/null
  if docker info >/dev/null 2>&1; then
    log "restarting dockerd to apply the configuration"
    $SUDO pkill -TERM dockerd || true
    for _ in $(seq 1 50); do pgrep -x dockerd >/dev/null || break; sleep 0.2; done
  fi
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  # Prefer the service manager when there is one; otherwise run it in the background.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    $SUDO systemctl start docker
  else
    $SUDO mkdir -p /var/log
    $SUDO sh -c 'nohup dockerd >/var/log/symbi-dockerd.log 2>&1 &'
  fi
  for i in $(seq 1 150); do
    docker info >/dev/null 2>&1 && break
    sleep 0.2
    if [ "$i" -eq 150 ]; then
      log "dockerd did not come up; last log lines:"
      tail -n 30 /var/log/symbi-dockerd.log >&2 || true
      exit 1
    fi
  done
fi
log "docker $(docker info --format '{{.ServerVersion}}') ready; runtimes: $(docker info --format '{{range $k, $v := .Runtimes}}{{$k}} {{end}}')"
