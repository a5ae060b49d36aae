#!/usr/bin/env bash
# The sedx benchmark: five scenarios on `sedx gen` data over a private OpenSSH sshd
# on loopback, and the same files through the standard tools in the same run.
# It measures and prints; it does not pass or fail. Takes about 30 minutes here
# (scenario 5 grows one store to 10 million records; GROW=2000000 is quicker).
#   bash scripts/bench.sh                 all four scenarios at full size
#   RECORDS=100000 DROPS=50 BIG_MB=100 bash scripts/bench.sh     a quicker look
#   ONLY=3 bash scripts/bench.sh          some scenarios only (2 needs 1)
#   GROW=3000000 CHUNK=500000 ONLY=5 bash scripts/bench.sh   a smaller growing store
#   PG=0 bash scripts/bench.sh            without the PostgreSQL runs of 1 and 3
#   SM2=0 bash scripts/bench.sh           without scenario 1 on an SM2/SM3 channel
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh sqlite3 postgresql-client
cargo build --release --locked --quiet
work=$(mktemp -d "${TMPDIR:-/tmp}/sedx-bench.XXXXXX")
trap 'bash scripts/sshd.sh stop "$work/sshd"; bash scripts/pg.sh stop "$work/pg"; rm -rf "$work"' EXIT
eval "$(bash scripts/sshd.sh start "$work/sshd")"
# Scenarios 1 and 3 run a second time with both stores on a PostgreSQL server
# on this machine (PG=0 skips them).
pg_url=""
if [ "${PG:-1}" != 0 ]; then
  pg_url=$(bash scripts/pg.sh start "$work/pg" | sed -n 's/^PGURL=//p')
fi
python3 scripts/bench.py --work "$work" --port "$PORT" --host-key "$HOST_KEY" \
  --authorized-keys "$AUTHORIZED_KEYS" --user "$(id -un)" \
  --records "${RECORDS:-1000000}" --batch "${BATCH:-10000}" --drops "${DROPS:-200}" \
  --big-mb "${BIG_MB:-1000}" --only "${ONLY:-12345}" \
  --grow "${GROW:-10000000}" --grow-cache-mb "${GROW_CACHE_MB:-1024}" --chunk "${CHUNK:-1000000}" --pg-url "$pg_url" \
  --sm2 "${SM2:-1}"
