#!/usr/bin/env bash
# The demo: an inspection node (检验) and a supervision node (监察) on this machine
# exchange equipment and inspection records over a private OpenSSH sshd. Run as
# root, it deploys them as docs/security.md says: each node's peer logs in to an
# account of its own, chrooted to its drop folder (scripts/peer-account.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --locked --quiet
sedx=$PWD/target/release/sedx
work=$(mktemp -d /tmp/sedx-demo.XXXXXX)
# sshd's ChrootDirectory wants root-owned folders all the way up: not under /tmp.
tag=$(basename "$work" | sed 's/.*\.//' | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9' | head -c 6)
base=/var/lib/sedx-demo-$tag
accounts=()
console_pid=""
cleanup() {
  [ -n "$console_pid" ] && kill "$console_pid" 2>/dev/null || true
  bash scripts/sshd.sh stop "$work/sshd"
  for a in "${accounts[@]}"; do userdel "$a" 2>/dev/null || true; groupdel "$a" 2>/dev/null || true; done
  rm -rf "$base"
}
trap cleanup EXIT
export SSHD_INCLUDE="$work/sshd.d/*.conf"
eval "$(bash scripts/sshd.sh start "$work/sshd")"
echo "A private sshd is listening on 127.0.0.1:$PORT (host key $HOST_KEY)."
"$sedx" demo --nodes-only --dir "$work/nodes" --sshd-port "$PORT" \
  --host-key "$HOST_KEY" --authorized-keys "$AUTHORIZED_KEYS" --user "$(id -un)" >/dev/null
insp=$work/nodes/inspection sup=$work/nodes/supervision
if [ "$(id -u)" = 0 ]; then
  echo "Each peer gets its own SFTP account, chrooted to its drop folder (scripts/peer-account.sh):"
  for side in sup insp; do
    # On $node's server, an account for $peer; $other (that peer) logs in with it to reach $me.
    if [ $side = sup ]; then node=$sup me=sup-city peer=insp-city other=$insp
    else node=$insp me=insp-city peer=sup-city other=$sup; fi
    account=sx$tag-${side:0:1}
    accounts+=("$account")
    bash scripts/peer-account.sh --node "$node" --peer "$peer" \
      --key "$(cat "$other/keys/login_ed25519.pub")" --account "$account" \
      --base "$base/$side" --sshd-dir "$work/sshd.d" --keys-dir "$base/authorized" \
      --sedx "$sedx" | sed -n 's/^\(ACCOUNT\|CHROOT\)=/  \1 /p'
    "$sedx" --node "$other" peer-set "$me" --user "$account" --remote-inbound /inbound >/dev/null
  done
  bash scripts/sshd.sh reload "$work/sshd"
else
  echo "(Not root: the nodes log in as $(id -un); see docs/security.md for the real deployment.)"
fi
SEDX_LOG=${SEDX_LOG:-warn} "$sedx" demo --existing --dir "$work/nodes" --sshd-port "$PORT" \
  --host-key "$HOST_KEY" --authorized-keys "$AUTHORIZED_KEYS"
# The console (控制台) of the supervision node, with an operator for the demo.
password=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
echo "$password" | "$sedx" --node "$sup" user add demo --role operator >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SEDX_LOG=warn "$sedx" --node "$sup" run --http "127.0.0.1:$port" 2>"$work/console.log" &
console_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
echo
echo "控制台 console of $sup:"
echo "  http://127.0.0.1:$port/   user: demo   password: $password"
echo "  (总览 overview, 批次 batches, 隔离区 quarantine, 业务受理, 查看设备信息; metrics at /metrics)"
if [ -t 0 ]; then
  read -r -p "Press Enter to stop the console and end the demo. " _
fi
echo "The nodes stay in $work/nodes: try  $sedx --node $sup status"
echo "(The demo's accounts and chroot folders are removed on exit.)"
