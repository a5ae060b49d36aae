#!/usr/bin/env bash
# The demo: an inspection node (检验) and a supervision node (监察) on this machine
# exchange equipment and inspection records over a private OpenSSH sshd.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --locked --quiet
work=$(mktemp -d /tmp/sedx-demo.XXXXXX)
trap 'bash scripts/sshd.sh stop "$work/sshd"' EXIT
eval "$(bash scripts/sshd.sh start "$work/sshd")"
echo "A private sshd is listening on 127.0.0.1:$PORT (host key $HOST_KEY)."
SEDX_LOG=${SEDX_LOG:-warn} ./target/release/sedx demo --dir "$work/nodes" --sshd-port "$PORT" \
  --host-key "$HOST_KEY" --authorized-keys "$AUTHORIZED_KEYS" --user "$(id -un)"
echo "The nodes stay in $work/nodes: try  ./target/release/sedx --node $work/nodes/supervision status"
