#!/usr/bin/env bash
# The test bed's registry mirror, running on the HOST (nodes use --network host):
#   - docker-registry (distribution 2.8) with TLS (own CA) and basic auth on
#     127.0.0.1:$TESTBED_REGISTRY_PORT, holding test images under infra/k8s/
#   - a plain HTTP server publishing the CA at http://127.0.0.1:$TESTBED_CA_PORT/ca.crt
#
# Usage: registry.sh start | stop [--purge] | status | env
#   start   idempotent: (re)starts what is not healthy, pushes missing test images
#   stop    stops both servers, keeps the state dir; --purge removes it too
#   status  exit 0 when both servers answer
#   env     prints shell-sourceable TESTBED_* settings: eval "$(registry.sh env)"
#
# Environment (defaults):
#   TESTBED_STATE=/tmp/kubenode-testbed   TESTBED_REGISTRY_PORT=15443   TESTBED_CA_PORT=15080
#   TESTBED_REGISTRY_USER=mirror-user     TESTBED_REGISTRY_PASSWORD='s3cr3t:pässwörd'
#   (the password holds a colon and non-ASCII characters on purpose)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF="$HERE/containers.conf"

STATE=${TESTBED_STATE:-/tmp/kubenode-testbed}
REG_PORT=${TESTBED_REGISTRY_PORT:-15443}
CA_PORT=${TESTBED_CA_PORT:-15080}
REG_USER=${TESTBED_REGISTRY_USER:-mirror-user}
REG_PASS=${TESTBED_REGISTRY_PASSWORD:-s3cr3t:pässwörd}
REG_HOST=127.0.0.1:$REG_PORT
REPO_PATH=infra/k8s
CA_FILE=$STATE/ca/ca.crt   # the ca/ dir holds only ca.crt: served over HTTP and used as podman --cert-dir

# Mirror repository (under $REPO_PATH) -> the public reference it stands in for.
IMAGES=(
  "library/tiny:1            docker.io/library/tiny:1"
  "coreos/tiny:1             quay.io/coreos/tiny:1"
  "google-containers/tiny:1  gcr.io/google-containers/tiny:1"
  "pause:3.9                 registry.k8s.io/pause:3.9"
  "platform9/tiny:1          platform9.io/platform9/tiny:1"
)

log() { echo "registry.sh: $*" >&2; }
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }   # single-quote for sh

# pid from a pid file, only if that process is still alive
alive_pid() {
  local pid
  pid=$(cat "$STATE/$1.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# HTTP status of GET /v2/ with our credentials (000: no answer)
registry_code() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$CA_FILE" \
    -u "$REG_USER:$REG_PASS" "https://$REG_HOST/v2/" || true
}
registry_ok() { [[ -f $CA_FILE && $(registry_code) == 200 ]]; }
ca_http_ok() {
  [[ -f $CA_FILE ]] && curl -sf --max-time 5 "http://127.0.0.1:$CA_PORT/ca.crt" | cmp -s - "$CA_FILE"
}

# start_bg NAME CHECK_FUNCTION COMMAND...: run COMMAND detached, wait (bounded) for CHECK.
start_bg() {
  local name=$1 check=$2 pid; shift 2
  if pid=$(alive_pid "$name"); then kill "$pid"; sleep 0.5; fi   # running but unhealthy
  # setsid: survives the caller's terminal/session; 9>&-: do not inherit the lock
  setsid "$@" >"$STATE/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$STATE/$name.pid"
  for _ in $(seq 150); do   # up to 30 s
    "$check" && return 0
    kill -0 "$(cat "$STATE/$name.pid")" 2>/dev/null || break
    sleep 0.2
  done
  log "$name did not become healthy; last lines of $STATE/$name.log:"
  tail -n 20 "$STATE/$name.log" >&2
  return 1
}

make_pki() {
  [[ -f $CA_FILE && -f $STATE/pki/server.crt ]] && return 0
  log "creating CA and server certificate in $STATE/pki"
  mkdir -p "$STATE/pki" "$STATE/ca"
  local p=$STATE/pki
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kubenode test bed CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$p/server.key" -out "$p/server.csr" 2>/dev/null
  printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'extendedKeyUsage=serverAuth' \
    'basicConstraints=CA:FALSE' >"$p/server.ext"
  openssl x509 -req -days 825 -in "$p/server.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" \
    -CAcreateserial -CAserial "$p/ca.srl" -extfile "$p/server.ext" -out "$p/server.crt" 2>/dev/null
  cp "$p/ca.crt" "$CA_FILE"
}

write_registry_config() {
  # Re-written on every (re)start so changed credentials or ports take effect.
  htpasswd -B -b -c "$STATE/htpasswd" "$REG_USER" "$REG_PASS" 2>/dev/null
  cat >"$STATE/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $STATE/data
  delete:
    enabled: true
http:
  addr: $REG_HOST
  tls:
    certificate: $STATE/pki/server.crt
    key: $STATE/pki/server.key
auth:
  htpasswd:
    realm: kubenode-testbed
    path: $STATE/htpasswd
EOF
}

# True if the mirror already has REPO:TAG (under $REPO_PATH).
has_image() {
  local repo=${1%:*} tag=${1##*:}
  [[ $(curl -s -o /dev/null -w '%{http_code}' -I --cacert "$CA_FILE" -u "$REG_USER:$REG_PASS" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "https://$REG_HOST/v2/$REPO_PATH/$repo/manifests/$tag") == 200 ]]
}

push_images() {
  local entry mirror_ref rootfs
  for entry in "${IMAGES[@]}"; do
    read -r mirror_ref _ <<<"$entry"
    has_image "$mirror_ref" && continue
    if ! podman image exists localhost/kubenode-tiny:1; then
      # A one-file image, built locally (no registry pulls possible here).
      rootfs=$(mktemp -d /tmp/kubenode-tiny.XXXXXX)
      echo "hello from the kubenode test bed" >"$rootfs/hello.txt"
      tar -C "$rootfs" -c . | podman import --quiet - localhost/kubenode-tiny:1 >/dev/null
      rm -rf "$rootfs"
    fi
    log "pushing $REPO_PATH/$mirror_ref"
    podman push --quiet --cert-dir "$STATE/ca" --creds "$REG_USER:$REG_PASS" \
      localhost/kubenode-tiny:1 "docker://$REG_HOST/$REPO_PATH/$mirror_ref"
  done
}

cmd_start() {
  mkdir -p "$STATE"
  exec 9>"$STATE/lock"; flock 9   # concurrent test runs: one starts, the others wait
  make_pki
  if ! registry_ok; then
    log "starting docker-registry on $REG_HOST"
    write_registry_config
    start_bg registry registry_ok docker-registry serve "$STATE/config.yml"
  fi
  if ! ca_http_ok; then
    log "starting CA server on http://127.0.0.1:$CA_PORT/ca.crt"
    start_bg ca-http ca_http_ok python3 -m http.server "$CA_PORT" --bind 127.0.0.1 --directory "$STATE/ca"
  fi
  push_images
}

cmd_stop() {
  local name pid
  for name in registry ca-http; do
    if pid=$(alive_pid "$name"); then
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$STATE/$name.pid"
  done
  if [[ ${1:-} == --purge ]]; then rm -rf "$STATE"; fi
}

cmd_status() {
  local rc=0
  case $([[ -f $CA_FILE ]] && registry_code) in
    200) echo "registry: up on https://$REG_HOST" ;;
    401) echo "registry: up on https://$REG_HOST but rejects user $REG_USER with this password"; rc=1 ;;
    *) echo "registry: down"; rc=1 ;;
  esac
  if ca_http_ok; then echo "ca-http: up on http://127.0.0.1:$CA_PORT/ca.crt"; else echo "ca-http: down"; rc=1; fi
  return $rc
}

cmd_env() {
  local entry ref public=()
  for entry in "${IMAGES[@]}"; do read -r _ ref <<<"$entry"; public+=("$ref"); done
  echo "TESTBED_REGISTRY_URL=$(shq "https://$REG_HOST")"
  echo "TESTBED_REGISTRY_HOST=$(shq "$REG_HOST")"   # also the certs.d directory name
  echo "TESTBED_REPO_PATH=$(shq "$REPO_PATH")"
  echo "TESTBED_REGISTRY_USER=$(shq "$REG_USER")"
  echo "TESTBED_REGISTRY_PASSWORD=$(shq "$REG_PASS")"
  echo "TESTBED_CA_FILE=$(shq "$CA_FILE")"
  echo "TESTBED_CA_URL=$(shq "http://127.0.0.1:$CA_PORT/ca.crt")"
  echo "TESTBED_IMAGES=$(shq "${public[*]}")"
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop "${2:-}" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 start | stop [--purge] | status | env" >&2; exit 2 ;;
esac
