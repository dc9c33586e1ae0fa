#!/usr/bin/env bash
# Build deploy/Dockerfile with podman and prove the image works (deploy/smoke.py): for `serve` with a `worker`
# container (SQLite), then for compose's web and two workers on Redis, /readyz answers 200, every container's
# HEALTHCHECK passes and one signed webhook delivery is processed against the GitHub test double. Prints build
# time, image size, the /readyz answers and the deliveries' results.
#
# Needs root (it mounts a tmpfs and runs rootful podman), Debian's packages (installed when missing) and the
# dev install (`pip install -e '.[dev]'`, for the double). No registry is needed: unless BASE_IMAGE is set,
# the base image is built locally from Debian bookworm's python3 (3.11) with debootstrap and imported; with
# BASE_IMAGE set (e.g. python:3.11-slim) that image is used as is, pulled when the engine can reach it.
#
# Environment: BASE_IMAGE (see above), DEPLOY_SMOKE_DIR (cache of the Debian root filesystem and the
# engine's tmpfs; default /var/tmp/ecr-cache-bot-deploy), KEEP_IMAGE=1 (leave the engine storage mounted).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK="${DEPLOY_SMOKE_DIR:-/var/tmp/ecr-cache-bot-deploy}"
IMAGE="localhost/ecr-cache-bot:smoke"
LOCAL_BASE="localhost/ecr-cache-bot-base/python:3.11-bookworm"
ENGINE_ROOT="$WORK/engine"
LOG="$WORK/build-and-smoke.log"

elapsed() { awk -v s="$1" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1f", e - s }'; }
say() { printf '%s\n' "$*"; }
fail() { say "FAILED: $*"; say "details: $LOG"; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (rootful podman, a tmpfs for the engine storage)"
mkdir -p "$WORK"
: >"$LOG"

# Debian's packages: podman, runc (crun refuses this machine's hybrid cgroup layout), debootstrap, and
# redis-server for the scale-out run.
missing=()
for pkg in podman runc debootstrap redis-server; do
  command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >>"$LOG" 2>&1
  apt-get install -y -qq --no-install-recommends "${missing[@]}" uidmap >>"$LOG" 2>&1 || fail "apt-get install"
fi

# The engine's storage lives on a tmpfs: this machine's disk creates files slowly (bench/build/infra.py), and
# every run starts from an empty engine, as a CI build machine does.
mkdir -p "$ENGINE_ROOT"
mountpoint -q "$ENGINE_ROOT" || mount -t tmpfs -o size=6g tmpfs "$ENGINE_ROOT"
ENGINE="podman --root $ENGINE_ROOT/storage --runroot $ENGINE_ROOT/run --storage-driver overlay"
cleanup() {
  if [ "${KEEP_IMAGE:-}" != 1 ]; then
    $ENGINE rm --all --force >>"$LOG" 2>&1 || true
    $ENGINE rmi --all --force >>"$LOG" 2>&1 || true
    umount -R "$ENGINE_ROOT" >>"$LOG" 2>&1 || true
  fi
}
trap cleanup EXIT
# runc, and limits no higher than this machine's: root here lacks CAP_SYS_RESOURCE, so podman's default
# (raise nofile/nproc) is refused by the runtime.
RUN_FLAGS="--runtime runc --ulimit nofile=4096:4096 --ulimit nproc=4096:4096"

if [ -z "${BASE_IMAGE:-}" ]; then
  ROOTFS="$WORK/rootfs-bookworm-python"
  start=$EPOCHREALTIME
  if [ ! -x "$ROOTFS/usr/bin/python3" ]; then
    say "debootstrap bookworm with python3 (once; cached in $ROOTFS)"
    rm -rf "$ROOTFS"
    # The Debian mirror this machine's apt already uses (deb822 `URIs:` or one-line `deb` sources).
    # (sed exits 2 on a glob that matched no file; what it read from the others still counts.)
    MIRROR=$({ sed -n -e 's|^URIs: *\([^ ]*/debian\)/*$|\1|p' -e 's|^deb \([^ ]*/debian\)/* bookworm .*|\1|p' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null || true; } \
      | head -n 1)
    [ -n "$MIRROR" ] || fail "no Debian mirror found in /etc/apt/sources.list*"
    debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
      bookworm "$ROOTFS" "$MIRROR" >>"$LOG" 2>&1 || fail "debootstrap"
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
      "$ROOTFS"/usr/share/doc "$ROOTFS"/usr/share/man "$ROOTFS"/usr/share/info
  fi
  # The machine's CA bundle: HTTPS to PyPI from inside the build must trust what the host trusts.
  cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
  tar -C "$ROOTFS" -c . | $ENGINE import \
    --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV=LANG=C.UTF-8' --change 'ENV=PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD=["python3"]' - "$LOCAL_BASE" >>"$LOG" 2>&1 || fail "import of the local base image"
  BASE_IMAGE="$LOCAL_BASE"
  say "base image: $BASE_IMAGE (Debian bookworm python3, local) ready in $(elapsed "$start") s"
else
  say "base image: $BASE_IMAGE"
fi

# --format docker keeps HEALTHCHECK (the OCI image config has no field for it).
start=$EPOCHREALTIME
# shellcheck disable=SC2086
$ENGINE build --format docker --network host $RUN_FLAGS --build-arg "BASE_IMAGE=$BASE_IMAGE" \
  -f deploy/Dockerfile -t "$IMAGE" . >>"$LOG" 2>&1 || fail "podman build"
say "build time: $(elapsed "$start") s (empty engine, dependencies from PyPI)"
size=$($ENGINE image inspect --format '{{.Size}}' "$IMAGE")
say "image size: $((size / 1000000)) MB ($IMAGE; base $(( $($ENGINE image inspect --format '{{.Size}}' "$BASE_IMAGE") / 1000000 )) MB)"
say "image user: $($ENGINE image inspect --format '{{.Config.User}}' "$IMAGE"), volumes: $($ENGINE image inspect --format '{{range $k, $v := .Config.Volumes}}{{$k}} {{end}}' "$IMAGE")"

python3 deploy/smoke.py "$IMAGE" --engine "$ENGINE" --run-flags "$RUN_FLAGS" || fail "smoke test"
say "smoke test: passed"
