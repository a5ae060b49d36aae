#!/usr/bin/env bash
# A throwaway OpenSSH server for tests and the demo.
#   scripts/sshd.sh start DIR   start sshd on a free 127.0.0.1 port (or $SSHD_PORT) with
#                               keys in DIR; prints PORT=, HOST_KEY=, AUTHORIZED_KEYS=, PID=
#   scripts/sshd.sh stop DIR    stop it (by the PID it recorded), live connections too
#   scripts/sshd.sh cut DIR     drop every live connection; the server keeps listening
#   scripts/sshd.sh reload DIR  read the configuration again (SIGHUP; same port and PID)
# With SSHD_INCLUDE=GLOB, the configuration ends with `Include GLOB` (the Match
# blocks scripts/peer-account.sh writes).
# Host key: DIR/host_ed25519 (made once; delete it to get a new one).
set -euo pipefail
cmd=${1:?usage: sshd.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: sshd.sh start|stop DIR}")
SSHD=${SSHD:-/usr/sbin/sshd}

cut() {
  # Each connection is served by a child of the listener.
  [ -f "$dir/sshd.pid" ] && pkill -KILL -P "$(cat "$dir/sshd.pid")" 2>/dev/null || true
}

stop() {
  if [ -f "$dir/sshd.pid" ]; then
    pid=$(cat "$dir/sshd.pid")
    # Freeze the listener so no new session starts while the live ones are cut.
    kill -STOP "$pid" 2>/dev/null || true
    cut
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$dir/sshd.pid"
  fi
}

case "$cmd" in
  stop) stop; exit 0 ;;
  reload)
    pid=$(cat "$dir/sshd.pid")
    "$SSHD" -t -f "$dir/sshd_config"
    kill -HUP "$pid"
    # Back when it answers again.
    port=$(sed -n 's/^Port //p' "$dir/sshd_config")
    for _ in $(seq 100); do
      ssh-keyscan -p "$port" -t ed25519 127.0.0.1 2>/dev/null | grep -q ssh-ed25519 && exit 0
      sleep 0.1
    done
    echo "sshd.sh: sshd did not come back after reload" >&2; exit 1 ;;
  cut) cut; exit 0 ;;
  start) ;;
  *) echo "usage: sshd.sh start|stop|cut|reload DIR" >&2; exit 2 ;;
esac

[ -x "$SSHD" ] || { echo "sshd.sh: $SSHD not found (apt-get install openssh-server)" >&2; exit 1; }
stop
mkdir -p /run/sshd "$dir"
[ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C sedx-test-host -f "$dir/host_ed25519"
touch "$dir/authorized_keys"
port=${SSHD_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
cat > "$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_ed25519
PidFile $dir/sshd.pidfile
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
LogLevel ERROR
CONF
if [ -n "${SSHD_INCLUDE:-}" ]; then
  echo "Include $SSHD_INCLUDE" >> "$dir/sshd_config"
fi
"$SSHD" -t -f "$dir/sshd_config"
"$SSHD" -D -e -f "$dir/sshd_config" </dev/null >>"$dir/sshd.log" 2>&1 &
echo $! > "$dir/sshd.pid"
for _ in $(seq 100); do
  if ssh-keyscan -p "$port" -t ed25519 127.0.0.1 2>/dev/null | grep -q ssh-ed25519; then
    echo "PORT=$port"
    echo "HOST_KEY=$dir/host_ed25519.pub"
    echo "AUTHORIZED_KEYS=$dir/authorized_keys"
    echo "PID=$(cat "$dir/sshd.pid")"
    exit 0
  fi
  kill -0 "$(cat "$dir/sshd.pid")" 2>/dev/null || { cat "$dir/sshd.log" >&2; exit 1; }
  sleep 0.1
done
echo "sshd.sh: sshd did not answer on port $port" >&2
stop
exit 1
