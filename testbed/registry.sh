#!/usr/bin/env bash
# The test bed's registry mirrors, running on the HOST (nodes use --network host):
#   - docker-registry (distribution 2.8) with TLS (own CA) and basic auth on
#     127.0.0.1:$TESTBED_REGISTRY_PORT, holding test images under infra/k8s/ (the PMK
#     mirror) and under one project per upstream (dockerhub-proxy/, ...: a Harbor proxy
#     cache, for its robot account); its certificate also names harbor.example
#   - a plain HTTP server publishing the CA at http://127.0.0.1:$TESTBED_CA_PORT/ca.crt
#   - a second docker-registry on 127.0.0.1:$TESTBED_MTLS_PORT that requires a client
#     certificate (no basic auth; its own CA signs its server and client certificates),
#     holding the test images under one project per upstream (dockerhub-proxy/, quay-proxy/...)
#     and all of them under all-upstreams/; its certificate also names registry.site.internal
#
# Usage: registry.sh start | stop [--purge] | status | env | push REPO:TAG... | delete REPO:TAG...
#   start   idempotent: (re)starts what is not healthy, pushes missing test images
#   stop    stops the servers, keeps the state dir; --purge removes it too
#   status  exit 0 when all servers answer
#   env     prints shell-sourceable TESTBED_* settings: eval "$(registry.sh env)"
#   push    pushes the test image as each REPO:TAG the basic-auth registry lacks (pause:3.6's own
#           image for <path>/pause:3.6, else tiny's), e.g. under a repo path only one test uses
#   delete  deletes each REPO:TAG's manifest from the basic-auth registry (none there: nothing to do);
#           only for a repo path of one test's own: other runs share the registry
#
# Environment (defaults):
#   TESTBED_STATE=/tmp/kubenode-testbed   TESTBED_REGISTRY_PORT=15443   TESTBED_CA_PORT=15080
#   TESTBED_REGISTRY_USER=mirror-user     TESTBED_REGISTRY_PASSWORD='s3cr3t:pässwörd'
#   (the password holds a colon and non-ASCII characters on purpose)
#   TESTBED_HARBOR_USER='robot$proxy'     TESTBED_HARBOR_PASSWORD=r0b0t-s3cr3t
#   TESTBED_MTLS_PORT=15444
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF="$HERE/containers.conf"

STATE=${TESTBED_STATE:-/tmp/kubenode-testbed}
REG_PORT=${TESTBED_REGISTRY_PORT:-15443}
CA_PORT=${TESTBED_CA_PORT:-15080}
REG_USER=${TESTBED_REGISTRY_USER:-mirror-user}
REG_PASS=${TESTBED_REGISTRY_PASSWORD:-s3cr3t:pässwörd}
REG_HOST=127.0.0.1:$REG_PORT
# Harbor's robot account, a second user of the same registry (Harbor's robot names hold a $).
HARBOR_USER=${TESTBED_HARBOR_USER:-robot\$proxy}
HARBOR_PASS=${TESTBED_HARBOR_PASSWORD:-r0b0t-s3cr3t}
# Host names the server certificates name besides 127.0.0.1 and localhost, for set-ups written
# with names (a node maps them to 127.0.0.1 in its /etc/hosts): Harbor's, and an air-gapped site's.
REG_NAME=harbor.example
MTLS_NAME=registry.site.internal
REPO_PATH=infra/k8s
CA_FILE=$STATE/ca/ca.crt   # the ca/ dir holds only ca.crt: served over HTTP and used as podman --cert-dir
MTLS_HOST=127.0.0.1:${TESTBED_MTLS_PORT:-15444}
MTLS_DIR=$STATE/mtls
# The client's files, named as podman's --cert-dir (and Docker's certs.d) wants them.
MTLS_CERTS=$MTLS_DIR/certs
MTLS_CA_FILE=$MTLS_CERTS/ca.crt
MTLS_CLIENT_CERT=$MTLS_CERTS/client.cert
MTLS_CLIENT_KEY=$MTLS_CERTS/client.key

# Mirror repository (under $REPO_PATH) -> the public reference it stands in for.
IMAGES=(
  "library/tiny:1            docker.io/library/tiny:1"
  "coreos/tiny:1             quay.io/coreos/tiny:1"
  "google-containers/tiny:1  gcr.io/google-containers/tiny:1"
  "pause:3.9                 registry.k8s.io/pause:3.9"
  "pause:3.6                 registry.k8s.io/pause:3.6"   # PMK's sandbox_image, containerd 1.6's default
  "platform9/tiny:1          platform9.io/platform9/tiny:1"
)
# Upstream registry -> its project on the mTLS registry and the first (as with a proxy-cache project
# per upstream in Harbor). Each of MTLS_IMAGES is stored as <project>/<path without the host>.
MTLS_PROJECTS=(
  "docker.io        dockerhub-proxy"
  "quay.io          quay-proxy"
  "gcr.io           gcr-proxy"
  "registry.k8s.io  k8s-proxy"
  "platform9.io     platform9-proxy"
  "ghcr.io          ghcr-proxy"   # not one of PMK's five: a registry only a wildcard covers
)
MTLS_IMAGES=(
  docker.io/library/tiny:1 quay.io/coreos/tiny:1 gcr.io/google-containers/tiny:1
  registry.k8s.io/pause:3.9 registry.k8s.io/pause:3.6 platform9.io/platform9/tiny:1 ghcr.io/kubenode/tiny:1
)
# The mTLS registry's project that holds every upstream's images under one path (a mirror
# for *, every registry, with one repo path): each of MTLS_IMAGES as all-upstreams/<path>.
ALL_UPSTREAMS=all-upstreams
log() { echo "registry.sh: $*" >&2; }
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }   # single-quote for sh

# pid from a pid file, only if that process is still alive
alive_pid() {
  local pid
  pid=$(cat "$STATE/$1.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# curl and podman push, authenticated to each registry
registry_curl() { curl --cacert "$CA_FILE" -u "$REG_USER:$REG_PASS" "$@"; }
harbor_curl() { curl --cacert "$CA_FILE" -u "$HARBOR_USER:$HARBOR_PASS" "$@"; }
registry_push() { podman push --quiet --cert-dir "$STATE/ca" --creds "$REG_USER:$REG_PASS" "$@"; }
mtls_curl() { curl --cacert "$MTLS_CA_FILE" --cert "$MTLS_CLIENT_CERT" --key "$MTLS_CLIENT_KEY" "$@"; }
mtls_push() { podman push --quiet --cert-dir "$MTLS_CERTS" "$@"; }

# http_code CURL HOST: HTTP status of GET /v2/ (000: no answer)
http_code() { "$1" -s -o /dev/null -w '%{http_code}' --max-time 5 "https://$2/v2/" || true; }
registry_code() { http_code registry_curl "$REG_HOST"; }
registry_ok() { [[ -f $CA_FILE && $(registry_code) == 200 && $(http_code harbor_curl "$REG_HOST") == 200 ]]; }
mtls_ok() { [[ -f $MTLS_CLIENT_KEY && $(http_code mtls_curl "$MTLS_HOST") == 200 ]]; }
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

# make_ca DIR CN: DIR/ca.key and DIR/ca.crt
make_ca() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$1/ca.key" -out "$1/ca.crt" 2>/dev/null
  chmod 0600 "$1/ca.key"
}

# make_cert CA_DIR CERT KEY CN EXTENSION...: a key (0600) and a certificate CA_DIR's CA signs.
make_cert() {
  local ca=$1 cert=$2 key=$3 cn=$4; shift 4
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" -keyout "$key" -out "${cert%.*}.csr" 2>/dev/null
  chmod 0600 "$key"
  printf '%s\n' "$@" 'basicConstraints=CA:FALSE' >"${cert%.*}.ext"
  openssl x509 -req -days 825 -in "${cert%.*}.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" \
    -CAcreateserial -CAserial "$ca/ca.srl" -extfile "${cert%.*}.ext" -out "$cert" 2>/dev/null
}

# server_cert DIR NAME: DIR/pki/server.{crt,key} for 127.0.0.1, localhost and NAME, signed by
# DIR/pki's CA; kept when it names them already. Returns 1 when it had to be made (again: a
# state dir from before NAME was added keeps its CA), so that a running registry restarts.
server_cert() {
  local dir=$1/pki san="IP:127.0.0.1,DNS:localhost,DNS:$2"
  if [[ -f $dir/server.crt ]] &&
    openssl x509 -in "$dir/server.crt" -noout -ext subjectAltName 2>/dev/null |
    grep -xF "    IP Address:127.0.0.1, DNS:localhost, DNS:$2" >/dev/null; then
    return 0
  fi
  log "issuing the server certificate in $dir for $san"
  make_cert "$dir" "$dir/server.crt" "$dir/server.key" 127.0.0.1 "subjectAltName=$san" extendedKeyUsage=serverAuth
  return 1
}

make_pki() {
  if [[ ! -f $CA_FILE ]]; then
    log "creating CA in $STATE/pki"
    mkdir -p "$STATE/pki" "$STATE/ca"
    make_ca "$STATE/pki" "kubenode test bed CA"
    cp "$STATE/pki/ca.crt" "$CA_FILE"
  fi
  server_cert "$STATE" "$REG_NAME"
}

# The mTLS registry's CA and server certificate (in pki/), and the nodes' client
# certificate with that CA (in certs/).
make_mtls_pki() {
  if [[ ! -f $MTLS_CA_FILE || ! -f $MTLS_CLIENT_KEY ]]; then
    log "creating the mTLS registry's CA and client certificate in $MTLS_DIR"
    mkdir -p "$MTLS_DIR/pki" "$MTLS_CERTS"
    make_ca "$MTLS_DIR/pki" "kubenode test bed mTLS CA"
    rm -f "$MTLS_DIR/pki/server.crt"   # the old CA's
    make_cert "$MTLS_DIR/pki" "$MTLS_CLIENT_CERT" "$MTLS_CLIENT_KEY" "kubenode test bed node" \
      extendedKeyUsage=clientAuth
    rm -f "$MTLS_CERTS"/client.csr "$MTLS_CERTS"/client.ext   # podman --cert-dir reads this dir
    cp "$MTLS_DIR/pki/ca.crt" "$MTLS_CA_FILE"
  fi
  server_cert "$MTLS_DIR" "$MTLS_NAME"
}

# registry_config ADDR DIR: what both registries' config.yml share (data and pki/ in DIR).
registry_config() {
  cat <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $2/data
  delete:
    enabled: true
http:
  addr: $1
  tls:
    certificate: $2/pki/server.crt
    key: $2/pki/server.key
EOF
}

write_registry_config() {
  # Re-written on every (re)start so changed credentials or ports take effect.
  htpasswd -B -b -c "$STATE/htpasswd" "$REG_USER" "$REG_PASS" 2>/dev/null
  htpasswd -B -b "$STATE/htpasswd" "$HARBOR_USER" "$HARBOR_PASS" 2>/dev/null
  {
    registry_config "$REG_HOST" "$STATE"
    printf '%s\n' 'auth:' '  htpasswd:' '    realm: kubenode-testbed' "    path: $STATE/htpasswd"
  } >"$STATE/config.yml"
}

write_mtls_config() {
  {
    registry_config "$MTLS_HOST" "$MTLS_DIR"
    printf '%s\n' '    clientcas:' "      - $MTLS_DIR/pki/ca.crt"
  } >"$MTLS_DIR/config.yml"
}

# has_image CURL HOST REPO:TAG: true if the registry has that manifest.
has_image() {
  local repo=${3%:*} tag=${3##*:}
  [[ $("$1" -s -o /dev/null -w '%{http_code}' -I \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "https://$2/v2/$repo/manifests/$tag") == 200 ]]
}

# local_image NAME FILE TEXT: a one-file image NAME built locally (no registry pulls
# possible here), unless it exists.
local_image() {
  local rootfs
  podman image exists "$1" && return 0
  rootfs=$(mktemp -d /tmp/kubenode-image.XXXXXX)
  echo "$3" >"$rootfs/$2"
  tar -C "$rootfs" -c . | podman import --quiet - "$1" >/dev/null
  rm -rf "$rootfs"
}

# push_images CURL PUSH HOST REPO:TAG...: pushes a test image as each REPO:TAG the
# registry does not have yet: the sandbox image pause:3.6 (<path>/pause:3.6) its own
# one-file image, every other reference the same one-file "tiny" image. pause:3.6 has
# its own digest because the CRI store keeps one record per image ID: sharing tiny's,
# it would be one image with both names (a CRI rmi of tiny:1 would remove pause:3.6
# too, and containerd 1.7 and 2.x would show tiny:1 pinned as the sandbox image).
push_images() {
  local curl=$1 push=$2 host=$3 ref image
  shift 3
  for ref; do
    has_image "$curl" "$host" "$ref" && continue
    if [[ $ref == pause:3.6 || $ref == */pause:3.6 ]]; then
      image=localhost/kubenode-pause:3.6
      local_image "$image" pause "the kubenode test bed's stand-in for the pod sandbox image"
    else
      image=localhost/kubenode-tiny:1
      local_image "$image" hello.txt "hello from the kubenode test bed"
    fi
    log "pushing $host/$ref"
    "$push" "$image" "docker://$host/$ref"
  done
}

# project_repo PUBLIC_REF: where a project per upstream holds it, <project>/<path>.
project_repo() {
  local entry upstream project
  for entry in "${MTLS_PROJECTS[@]}"; do
    read -r upstream project <<<"$entry"
    if [[ $1 == "$upstream"/* ]]; then echo "$project/${1#*/}"; return 0; fi
  done
  log "no project on the mTLS registry for $1"
  return 1
}

cmd_start() {
  local entry ref repos=() cert_kept=true
  mkdir -p "$STATE"
  exec 9>"$STATE/lock"; flock 9   # concurrent test runs: one starts, the others wait
  make_pki || cert_kept=false
  if ! $cert_kept || ! registry_ok; then
    log "starting docker-registry on $REG_HOST"
    write_registry_config
    start_bg registry registry_ok docker-registry serve "$STATE/config.yml"
  fi
  if ! ca_http_ok; then
    log "starting CA server on http://127.0.0.1:$CA_PORT/ca.crt"
    start_bg ca-http ca_http_ok python3 -m http.server "$CA_PORT" --bind 127.0.0.1 --directory "$STATE/ca"
  fi
  for entry in "${IMAGES[@]}"; do read -r ref _ <<<"$entry"; repos+=("$REPO_PATH/$ref"); done
  for ref in "${MTLS_IMAGES[@]}"; do repos+=("$(project_repo "$ref")"); done
  push_images registry_curl registry_push "$REG_HOST" "${repos[@]}"

  cert_kept=true
  make_mtls_pki || cert_kept=false
  if ! $cert_kept || ! mtls_ok; then
    log "starting the mTLS docker-registry on $MTLS_HOST"
    write_mtls_config
    start_bg mtls-registry mtls_ok docker-registry serve "$MTLS_DIR/config.yml"
  fi
  repos=()
  for ref in "${MTLS_IMAGES[@]}"; do repos+=("$(project_repo "$ref")" "$ALL_UPSTREAMS/${ref#*/}"); done
  push_images mtls_curl mtls_push "$MTLS_HOST" "${repos[@]}"
}

# The basic-auth registry must be up (registry.sh start) for push and delete.
cmd_push() {
  exec 9>"$STATE/lock"; flock 9   # not while start pushes
  push_images registry_curl registry_push "$REG_HOST" "$@"
}

cmd_delete() {
  local ref repo tag digest
  exec 9>"$STATE/lock"; flock 9
  for ref; do
    repo=${ref%:*} tag=${ref##*:}
    digest=$(registry_curl -s -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
      -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "https://$REG_HOST/v2/$repo/manifests/$tag" | tr -d '\r' |
      awk 'tolower($1) == "docker-content-digest:" {print $2}')
    [[ -n $digest ]] || continue
    log "deleting $REG_HOST/$ref ($digest)"
    [[ $(registry_curl -s -o /dev/null -w '%{http_code}' -X DELETE "https://$REG_HOST/v2/$repo/manifests/$digest") == 202 ]] ||
      { log "the registry did not delete $REG_HOST/$ref"; return 1; }
  done
}

cmd_stop() {
  local name pid
  for name in registry ca-http mtls-registry; do
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
  if mtls_ok; then echo "mtls-registry: up on https://$MTLS_HOST"; else echo "mtls-registry: down"; rc=1; fi
  return $rc
}

cmd_env() {
  local entry ref project public=() projects=()
  for entry in "${IMAGES[@]}"; do read -r _ ref <<<"$entry"; public+=("$ref"); done
  for entry in "${MTLS_PROJECTS[@]}"; do read -r ref project <<<"$entry"; projects+=("$ref=$project"); done
  echo "TESTBED_REGISTRY_URL=$(shq "https://$REG_HOST")"
  echo "TESTBED_REGISTRY_HOST=$(shq "$REG_HOST")"   # also the certs.d directory name
  echo "TESTBED_REPO_PATH=$(shq "$REPO_PATH")"
  echo "TESTBED_REGISTRY_USER=$(shq "$REG_USER")"
  echo "TESTBED_REGISTRY_PASSWORD=$(shq "$REG_PASS")"
  echo "TESTBED_REGISTRY_NAME=$(shq "$REG_NAME")"   # in its certificate too: map it to 127.0.0.1
  echo "TESTBED_HARBOR_USER=$(shq "$HARBOR_USER")"   # its projects' robot account
  echo "TESTBED_HARBOR_PASSWORD=$(shq "$HARBOR_PASS")"
  echo "TESTBED_CA_FILE=$(shq "$CA_FILE")"
  echo "TESTBED_CA_URL=$(shq "http://127.0.0.1:$CA_PORT/ca.crt")"
  echo "TESTBED_IMAGES=$(shq "${public[*]}")"
  echo "TESTBED_REGISTRY_LOG=$(shq "$STATE/registry.log")"   # its requests; rewritten at each (re)start
  echo "TESTBED_MTLS_URL=$(shq "https://$MTLS_HOST")"
  echo "TESTBED_MTLS_HOST=$(shq "$MTLS_HOST")"
  echo "TESTBED_MTLS_NAME=$(shq "$MTLS_NAME")"   # in its certificate too: map it to 127.0.0.1
  echo "TESTBED_MTLS_CA_FILE=$(shq "$MTLS_CA_FILE")"
  echo "TESTBED_MTLS_CLIENT_CERT=$(shq "$MTLS_CLIENT_CERT")"
  echo "TESTBED_MTLS_CLIENT_KEY=$(shq "$MTLS_CLIENT_KEY")"
  echo "TESTBED_MTLS_PROJECTS=$(shq "${projects[*]}")"   # upstream=project ..., on both registries
  echo "TESTBED_MTLS_ALL_UPSTREAMS=$(shq "$ALL_UPSTREAMS")"   # every image, under one project
  echo "TESTBED_MTLS_IMAGES=$(shq "${MTLS_IMAGES[*]}")"
  echo "TESTBED_MTLS_LOG=$(shq "$STATE/mtls-registry.log")"   # its requests and TLS handshake errors
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop "${2:-}" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  push) shift; cmd_push "$@" ;;
  delete) shift; cmd_delete "$@" ;;
  *) echo "usage: $0 start | stop [--purge] | status | env | push REPO:TAG... | delete REPO:TAG..." >&2; exit 2 ;;
esac
