#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests and benchmarks (Debian's postgresql):
#   pg.sh start DIR   a new cluster on a free 127.0.0.1 port; prints PGPORT=, PGURL=
#                     (scram-sha-256, a random password) and DATA=; DIR/pg.env keeps them
#   pg.sh stop DIR    stop it by its PID and remove its data
# initdb refuses root: as root the cluster belongs to the `postgres` account (made by
# the package), its data in a folder of its own under /tmp.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "pg.sh: PostgreSQL not installed (scripts/deps.sh postgresql)" >&2; exit 1; }
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
start)
  mkdir -p "$dir"
  data=$(mktemp -d /tmp/sedx-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres: "$data"
  chmod 700 "$data"
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pwfile="$data/.pw"
  printf '%s\n' "$password" > "$pwfile"
  [ "$(id -u)" = 0 ] && chown postgres: "$pwfile"
  as_owner "$bin/initdb" -D "$data/db" -U sedx --auth=scram-sha-256 --pwfile="$pwfile" \
    -E UTF8 --locale=C.UTF-8 >"$data/initdb.log" 2>&1 \
    || { cat "$data/initdb.log" >&2; exit 1; }
  rm -f "$pwfile"
  # Loopback TCP only, the socket in the data folder; fsync on as in production.
  as_owner "$bin/pg_ctl" -D "$data/db" -l "$data/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c max_connections=200" start >/dev/null \
    || { cat "$data/server.log" >&2; exit 1; }
  url="postgres://sedx:$password@127.0.0.1:$port/postgres"
  {
    echo "PGPORT=$port"
    echo "PGURL=$url"
    echo "DATA=$data"
  } | tee "$dir/pg.env"
  ;;
stop)
  [ -f "$dir/pg.env" ] || exit 0
  data=$(sed -n 's/^DATA=//p' "$dir/pg.env")
  if [ -f "$data/db/postmaster.pid" ]; then
    pid=$(head -1 "$data/db/postmaster.pid")
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  case "$data" in /tmp/sedx-pg.*) rm -rf "$data" ;; esac
  rm -f "$dir/pg.env"
  ;;
*) echo "pg.sh: start|stop DIR" >&2; exit 2 ;;
esac
