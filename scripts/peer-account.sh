#!/usr/bin/env bash
# Give one peer its own SFTP login to this node, and nothing else (docs/security.md):
# a system account with no shell, chrooted by sshd into a root-owned folder that
# holds only that peer's drop folders, internal-sftp forced, no forwarding, a umask.
#
#   scripts/peer-account.sh --node NODE_DIR --peer PEER_ID --key 'ssh-ed25519 AAAA... comment'
#                           [--pull] [--account NAME] [--base /srv/sedx-sftp/NODE_ID]
#                           [--service-user sedx] [--sshd-dir /etc/ssh/sshd_config.d]
#                           [--keys-dir /etc/ssh/sedx_authorized_keys] [--sedx sedx]
#
# It makes (again and again without harm):
#   - the account NAME (default sedx-PEER_ID): --system, shell /usr/sbin/nologin,
#     a group of its own; the service user joins that group;
#   - BASE/PEER_ID (root:root 0755, the chroot) with inbound/ (2770, NAME:NAME) where
#     the peer uploads, and with --pull outbox/ (2770) where its sets wait;
#   - KEYS_DIR/NAME: the peer's login key, restricted (no pty, no forwarding);
#   - SSHD_DIR/sedx-NAME.conf: a Match block for the account (reload sshd after);
#   - in NODE_DIR/sedx.toml, the peer's local_inbound (and local_outbox) folders.
# It prints what the peer puts in its own sedx.toml (user, remote_inbound, ...).
set -euo pipefail

node="" peer="" key="" pull=0 account="" base="" service_user="sedx"
sshd_dir=/etc/ssh/sshd_config.d keys_dir=/etc/ssh/sedx_authorized_keys sedx=sedx
while [ $# -gt 0 ]; do
  case "$1" in
    --node) node=$2; shift 2 ;;
    --peer) peer=$2; shift 2 ;;
    --key) key=$2; shift 2 ;;
    --pull) pull=1; shift ;;
    --account) account=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --service-user) service_user=$2; shift 2 ;;
    --sshd-dir) sshd_dir=$2; shift 2 ;;
    --keys-dir) keys_dir=$2; shift 2 ;;
    --sedx) sedx=$2; shift 2 ;;
    *) echo "peer-account.sh: unknown argument $1 (see the comment at the top)" >&2; exit 2 ;;
  esac
done
fail() { echo "peer-account.sh: $*" >&2; exit 1; }
[ -n "$node" ] && [ -n "$peer" ] && [ -n "$key" ] || fail "--node, --peer and --key are required"
[ "$(id -u)" = 0 ] || fail "run as root (it adds an account and writes sshd configuration)"
[[ "$peer" =~ ^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$ ]] || fail "peer id $peer is not a node id"
[[ "$key" =~ ^(ssh-ed25519|ecdsa-sha2-nistp256|rsa-sha2-512|ssh-rsa)\ [A-Za-z0-9+/=]+( .*)?$ ]] \
  || fail "--key must be one public key line (ssh-ed25519 AAAA...)"
case "$key" in *$'\n'*) fail "--key must be one line" ;; esac
node=$(realpath "$node")
[ -f "$node/sedx.toml" ] || fail "$node holds no sedx.toml"
node_id=$(sed -n 's/^id = "\(.*\)"$/\1/p' "$node/sedx.toml" | head -1)
account=${account:-sedx-$peer}
[ ${#account} -le 32 ] || fail "account name $account is longer than 32 characters; give --account"
base=${base:-/srv/sedx-sftp/$node_id}
chroot="$base/$peer"

# The account: no home, no shell, a group of its own.
if ! id "$account" >/dev/null 2>&1; then
  useradd --system --user-group --no-create-home --home-dir / --shell /usr/sbin/nologin \
    --comment "sedx peer $peer of $node_id (SFTP only)" "$account"
fi
# No password can ever match "*"; unlike "!" it does not mark the account locked,
# which sshd without PAM would refuse even for a key.
usermod -p '*' "$account"
if [ "$service_user" != root ] && id "$service_user" >/dev/null 2>&1; then
  usermod -a -G "$account" "$service_user"
fi

# The chroot: every component root-owned and not writable by group or others
# (sshd refuses anything else); the drop folders inside belong to the account.
mkdir -p "$chroot"
d=$chroot
while [ "$d" != / ]; do
  owner=$(stat -c %u "$d"); mode=$(stat -c %a "$d")
  if [ "$owner" != 0 ] || [ $((8#$mode & 8#022)) != 0 ]; then
    [[ "$d" == "$base"* ]] || fail "$d must be owned by root and not group/world-writable (sshd's ChrootDirectory rule); choose another --base"
    chown root:root "$d"; chmod 0755 "$d"
  fi
  d=$(dirname "$d")
done
folders=(inbound)
[ $pull = 1 ] && folders+=(outbox)
for f in "${folders[@]}"; do
  mkdir -p "$chroot/$f"
  chown "$account:$account" "$chroot/$f"
  chmod 2770 "$chroot/$f"
done

# The login key, restricted: no pty, no forwarding of any kind, no rc files.
install -d -o root -g root -m 0755 "$keys_dir"
printf 'restrict %s\n' "$key" > "$keys_dir/$account.tmp"
chmod 0644 "$keys_dir/$account.tmp"
mv "$keys_dir/$account.tmp" "$keys_dir/$account"
# sshd reads the key file as the account: every folder above must let it through.
runuser -u "$account" -- test -r "$keys_dir/$account" \
  || fail "$account cannot read $keys_dir/$account (sshd reads it as the account); every folder above $keys_dir must be world-traversable"

# The sshd rule for the account.
install -d -m 0755 "$sshd_dir"
cat > "$sshd_dir/sedx-$account.conf.tmp" <<CONF
# sedx: peer $peer of node $node_id (made by scripts/peer-account.sh)
Match User $account
    ChrootDirectory $chroot
    ForceCommand internal-sftp -u 0027
    AuthorizedKeysFile $keys_dir/%u
    PubkeyAuthentication yes
    PasswordAuthentication no
    KbdInteractiveAuthentication no
    AllowTcpForwarding no
    AllowStreamLocalForwarding no
    AllowAgentForwarding no
    PermitTunnel no
    X11Forwarding no
    PermitTTY no
    PermitUserRC no
CONF
mv "$sshd_dir/sedx-$account.conf.tmp" "$sshd_dir/sedx-$account.conf"

# The node reads this peer's sets from the chroot (and leaves its sets there).
args=(--inbound "$chroot/inbound")
[ $pull = 1 ] && args+=(--outbox "$chroot/outbox")
"$sedx" --node "$node" peer-set "$peer" "${args[@]}" >/dev/null

echo "ACCOUNT=$account"
echo "CHROOT=$chroot"
echo "SSHD_SNIPPET=$sshd_dir/sedx-$account.conf"
echo "# Reload sshd (systemctl reload ssh) and restart sedx. Peer $peer puts in its sedx.toml:"
echo "#   user = \"$account\""
echo "#   remote_inbound = \"/inbound\""
[ $pull = 1 ] && echo "#   remote_outbox = \"/outbox\"  (transport = \"pull\")"
exit 0
