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
#   - a third docker-registry on 127.0.0.1:$TESTBED_TOKEN_PORT in `auth: token` mode (TLS with the
#     first one's CA), with its token server (token_server.py) on
#     https://127.0.0.1:$TESTBED_TOKEN_SERVER_PORT/token: the test images under public/ (anyone may
#     pull, anonymously too) and private/ (only the robot account $TESTBED_TOKEN_USER)
#   - a fourth docker-registry on 127.0.0.1:$TESTBED_TOKEN_OTHER_PORT, the same images (same
#     storage), whose realm is on another address: a second token server on
#     https://127.0.0.2:$TESTBED_TOKEN_SERVER_PORT/token, with a log of its own
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
#   TESTBED_TOKEN_PORT=15445   TESTBED_TOKEN_OTHER_PORT=15446   TESTBED_TOKEN_SERVER_PORT=15447
#   TESTBED_TOKEN_USER='robot$private+puller'   TESTBED_TOKEN_PASSWORD='t0k3n:r0b0t'
#   TESTBED_TOKEN_PUSHER_PASSWORD=pu5her-s3cr3t (user tokenbed-pusher: registry.sh's pushes)
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
# The token-auth registries (token_server.py issues their tokens).
TOKEN_HOST=127.0.0.1:${TESTBED_TOKEN_PORT:-15445}
TOKEN_OTHER_HOST=127.0.0.1:${TESTBED_TOKEN_OTHER_PORT:-15446}
TOKEN_SERVER_PORT=${TESTBED_TOKEN_SERVER_PORT:-15447}
TOKEN_ADDR=127.0.0.1     # the realm on the registry's own host
TOKEN_OTHER_ADDR=127.0.0.2   # the realm of the other registry: another address
TOKEN_REALM=https://$TOKEN_ADDR:$TOKEN_SERVER_PORT/token
TOKEN_OTHER_REALM=https://$TOKEN_OTHER_ADDR:$TOKEN_SERVER_PORT/token
TOKEN_SERVICE=kubenode-token-registry
TOKEN_ISSUER=kubenode-testbed-token-server
TOKEN_USER=${TESTBED_TOKEN_USER:-robot\$private+puller}   # Harbor's name of a project's robot account
TOKEN_PASS=${TESTBED_TOKEN_PASSWORD:-t0k3n:r0b0t}
TOKEN_PUSHER=tokenbed-pusher
TOKEN_PUSHER_PASS=${TESTBED_TOKEN_PUSHER_PASSWORD:-pu5her-s3cr3t}
TOKEN_PUBLIC=public     # anyone may pull, anonymously too
TOKEN_PRIVATE=private   # only TOKEN_USER may pull
TOKEN_DIR=$STATE/token
TOKEN_LOG=$TOKEN_DIR/requests.log   # the token server's JSON lines, one per token request
TOKEN_OTHER_LOG=$TOKEN_DIR/requests-$TOKEN_OTHER_ADDR.log
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
token_push() { podman push --quiet --cert-dir "$STATE/ca" --creds "$TOKEN_PUSHER:$TOKEN_PUSHER_PASS" "$@"; }
# token_curl ARG... URL: curl with the pusher's token for the repository of URL (.../v2/REPO/manifests/TAG)
token_curl() {
  local url=${*: -1} repo scope=() token
  if [[ $url == https://*/v2/*/manifests/* ]]; then
    repo=${url#https://*/v2/}
    scope=(--data-urlencode "scope=repository:${repo%/manifests/*}:pull")
  fi
  token=$(curl -sf --max-time 5 --cacert "$CA_FILE" -u "$TOKEN_PUSHER:$TOKEN_PUSHER_PASS" -G \
    --data-urlencode "service=$TOKEN_SERVICE" "${scope[@]}" "$TOKEN_REALM" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])') || return 1
  curl --cacert "$CA_FILE" -H "Authorization: Bearer $token" "$@"
}

# http_code CURL HOST: HTTP status of GET /v2/ (000: no answer)
http_code() { "$1" -s -o /dev/null -w '%{http_code}' --max-time 5 "https://$2/v2/" || true; }
registry_code() { http_code registry_curl "$REG_HOST"; }
registry_ok() { [[ -f $CA_FILE && $(registry_code) == 200 && $(http_code harbor_curl "$REG_HOST") == 200 ]]; }
mtls_ok() { [[ -f $MTLS_CLIENT_KEY && $(http_code mtls_curl "$MTLS_HOST") == 200 ]]; }
# challenge HOST: the WWW-Authenticate header of an anonymous GET /v2/ ('' unless a 401)
challenge() {
  curl -s -o /dev/null --max-time 5 --cacert "$CA_FILE" -w '%{http_code} %header{www-authenticate}' "https://$1/v2/" |
    sed -n 's/^401 //p'
}
token_server_ok() { curl -sf -o /dev/null --max-time 5 --cacert "$CA_FILE" "https://$1:$TOKEN_SERVER_PORT/healthz"; }
token_server_up() { token_server_ok "$TOKEN_ADDR"; }
token_other_server_up() { token_server_ok "$TOKEN_OTHER_ADDR"; }
# The registry names its realm, and takes the pusher's token (signature, x5c chain, claims).
token_registry_ok() {
  [[ $(challenge "$TOKEN_HOST") == "Bearer realm=\"$TOKEN_REALM\",service=\"$TOKEN_SERVICE\"" &&
    $(http_code token_curl "$TOKEN_HOST") == 200 ]]
}
# Only the challenge: a token request to the other realm would be in its log.
token_other_registry_ok() {
  [[ $(challenge "$TOKEN_OTHER_HOST") == "Bearer realm=\"$TOKEN_OTHER_REALM\",service=\"$TOKEN_SERVICE\"" ]]
}
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

# The token servers' TLS certificate (both addresses) and the token signing certificate, both
# signed by the first registry's CA (the token registries' rootcertbundle). Returns 1 when
# it had to make them, so that running token servers restart.
make_token_pki() {
  [[ -f $TOKEN_DIR/signing.crt && -f $TOKEN_DIR/tls.crt ]] &&
    openssl verify -CAfile "$CA_FILE" "$TOKEN_DIR/signing.crt" "$TOKEN_DIR/tls.crt" >/dev/null 2>&1 && return 0
  log "issuing the token servers' TLS and signing certificates in $TOKEN_DIR"
  mkdir -p "$TOKEN_DIR"
  make_cert "$STATE/pki" "$TOKEN_DIR/tls.crt" "$TOKEN_DIR/tls.key" "kubenode test bed token server" \
    "subjectAltName=IP:$TOKEN_ADDR,IP:$TOKEN_OTHER_ADDR,DNS:localhost" extendedKeyUsage=serverAuth
  make_cert "$STATE/pki" "$TOKEN_DIR/signing.crt" "$TOKEN_DIR/signing.key" "kubenode test bed token signer" \
    keyUsage=critical,digitalSignature
  rm -f "$TOKEN_DIR"/*.csr "$TOKEN_DIR"/*.ext
  return 1
}

# The token server's users and rights (JSON, 0600), re-written at every start: it reads the
# file at every request, so changed passwords take effect without a restart.
write_token_config() {
  (umask 077; python3 - "$TOKEN_DIR/config.json.new" "$TOKEN_ISSUER" "$TOKEN_SERVICE" "$TOKEN_DIR" \
    "$TOKEN_USER" "$TOKEN_PASS" "$TOKEN_PUSHER" "$TOKEN_PUSHER_PASS" "$TOKEN_PUBLIC" "$TOKEN_PRIVATE" <<'EOF'
import json, sys
path, issuer, service, pki, user, password, pusher, pusher_password, public, private = sys.argv[1:]
config = {
    "issuer": issuer, "service": service, "ttl": 300,
    "key": pki + "/signing.key", "cert": pki + "/signing.crt",
    "tls_key": pki + "/tls.key", "tls_cert": pki + "/tls.crt",
    "users": {user: password, pusher: pusher_password},
    "projects": {
        public: {"pull": ["anonymous", "authenticated"], "push": [pusher]},
        private: {"pull": [user, pusher], "push": [pusher]},
    },
}
with open(path, "w", encoding="utf-8") as stream:
    json.dump(config, stream, indent=2, ensure_ascii=False)
EOF
  ) && mv "$TOKEN_DIR/config.json.new" "$TOKEN_DIR/config.json"
}

# registry_config ADDR DIR [PKI]: what the registries' config.yml share (data in DIR, TLS in
# PKI, default DIR/pki).
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
    certificate: ${3:-$2/pki}/server.crt
    key: ${3:-$2/pki}/server.key
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

# write_token_registry_config NAME HOST REALM: NAME.yml of a token-auth registry (the
# token registries share their storage and the first registry's TLS certificate).
write_token_registry_config() {
  {
    registry_config "$2" "$TOKEN_DIR" "$STATE/pki"
    printf '%s\n' 'auth:' '  token:' "    realm: $3" "    service: $TOKEN_SERVICE" \
      "    issuer: $TOKEN_ISSUER" "    rootcertbundle: $CA_FILE"
  } >"$TOKEN_DIR/$1.yml"
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
  local entry ref repos=() cert_kept=true tls_kept
  mkdir -p "$STATE"
  exec 9>"$STATE/lock"; flock 9   # concurrent test runs: one starts, the others wait
  make_pki || cert_kept=false
  tls_kept=$cert_kept   # the token registries serve the same certificate
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
  start_token "$tls_kept"
}

# start_token TLS_KEPT: the token servers and the token-auth registries (restarted when
# unhealthy or when their certificates were made again), then the test images under
# public/ and private/.
start_token() {
  local tls_kept=$1 cert_kept=true ref repos=()
  make_token_pki || cert_kept=false
  write_token_config
  if ! $cert_kept || ! token_server_up; then
    log "starting the token server on $TOKEN_REALM"
    start_bg token-server token_server_up python3 "$HERE/token_server.py" "$TOKEN_DIR/config.json" \
      "$TOKEN_LOG" "$TOKEN_ADDR:$TOKEN_SERVER_PORT"
  fi
  if ! $cert_kept || ! token_other_server_up; then
    log "starting the token server on $TOKEN_OTHER_REALM"
    start_bg token-server-other token_other_server_up python3 "$HERE/token_server.py" \
      "$TOKEN_DIR/config.json" "$TOKEN_OTHER_LOG" "$TOKEN_OTHER_ADDR:$TOKEN_SERVER_PORT"
  fi
  if ! $tls_kept || ! token_registry_ok; then
    log "starting the token-auth docker-registry on $TOKEN_HOST (realm $TOKEN_REALM)"
    write_token_registry_config token-registry "$TOKEN_HOST" "$TOKEN_REALM"
    start_bg token-registry token_registry_ok docker-registry serve "$TOKEN_DIR/token-registry.yml"
  fi
  if ! $tls_kept || ! token_other_registry_ok; then
    log "starting the token-auth docker-registry on $TOKEN_OTHER_HOST (realm $TOKEN_OTHER_REALM)"
    write_token_registry_config token-other-registry "$TOKEN_OTHER_HOST" "$TOKEN_OTHER_REALM"
    start_bg token-other-registry token_other_registry_ok docker-registry serve "$TOKEN_DIR/token-other-registry.yml"
  fi
  for ref in "${MTLS_IMAGES[@]}"; do repos+=("$TOKEN_PUBLIC/${ref#*/}" "$TOKEN_PRIVATE/${ref#*/}"); done
  push_images token_curl token_push "$TOKEN_HOST" "${repos[@]}"
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
  for name in registry ca-http mtls-registry token-registry token-other-registry token-server token-server-other; do
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
  if token_server_up; then echo "token-server: up on $TOKEN_REALM"; else echo "token-server: down"; rc=1; fi
  if token_other_server_up; then echo "token-server-other: up on $TOKEN_OTHER_REALM"; else
    echo "token-server-other: down"; rc=1; fi
  if [[ -f $CA_FILE ]] && token_registry_ok; then echo "token-registry: up on https://$TOKEN_HOST"; else
    echo "token-registry: down"; rc=1; fi
  if [[ -f $CA_FILE ]] && token_other_registry_ok; then echo "token-other-registry: up on https://$TOKEN_OTHER_HOST"; else
    echo "token-other-registry: down"; rc=1; fi
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
  echo "TESTBED_TOKEN_URL=$(shq "https://$TOKEN_HOST")"
  echo "TESTBED_TOKEN_HOST=$(shq "$TOKEN_HOST")"   # also the certs.d directory name
  echo "TESTBED_TOKEN_REALM=$(shq "$TOKEN_REALM")"
  echo "TESTBED_TOKEN_SERVICE=$(shq "$TOKEN_SERVICE")"
  echo "TESTBED_TOKEN_PUBLIC=$(shq "$TOKEN_PUBLIC")"   # project: anyone may pull, anonymously too
  echo "TESTBED_TOKEN_PRIVATE=$(shq "$TOKEN_PRIVATE")"   # project: only TESTBED_TOKEN_USER may pull
  echo "TESTBED_TOKEN_USER=$(shq "$TOKEN_USER")"   # a robot account
  echo "TESTBED_TOKEN_PASSWORD=$(shq "$TOKEN_PASS")"
  echo "TESTBED_TOKEN_PUSHER_USER=$(shq "$TOKEN_PUSHER")"   # push (and pull) on both projects
  echo "TESTBED_TOKEN_PUSHER_PASSWORD=$(shq "$TOKEN_PUSHER_PASS")"
  echo "TESTBED_TOKEN_LOG=$(shq "$TOKEN_LOG")"   # the token server's JSON lines
  echo "TESTBED_TOKEN_REGISTRY_LOG=$(shq "$STATE/token-registry.log")"
  echo "TESTBED_TOKEN_OTHER_URL=$(shq "https://$TOKEN_OTHER_HOST")"
  echo "TESTBED_TOKEN_OTHER_HOST=$(shq "$TOKEN_OTHER_HOST")"
  echo "TESTBED_TOKEN_OTHER_REALM=$(shq "$TOKEN_OTHER_REALM")"
  echo "TESTBED_TOKEN_OTHER_LOG=$(shq "$TOKEN_OTHER_LOG")"   # its token server's JSON lines
  echo "TESTBED_TOKEN_OTHER_REGISTRY_LOG=$(shq "$STATE/token-other-registry.log")"
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
