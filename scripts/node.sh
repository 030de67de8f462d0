#!/bin/sh
# Run Node 24: the system node when it is new enough, else the private copy scripts/setup.sh fetched.
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
private="$root/.tools/node-24.21.0/bin/node"
if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 24 ]; then exec node "$@"; fi
[ -x "$private" ] || { echo "Node 24 is missing: run 'npm run setup'" >&2; exit 3; }
exec "$private" "$@"
