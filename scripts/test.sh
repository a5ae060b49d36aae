#!/usr/bin/env bash
# The test command: installs what is missing, then checks formatting, lints and
# runs every test (the integration tests start their own OpenSSH sshd, and
# PostgreSQL servers for the second round).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --all-targets
# The store's suites once more with both nodes' stores on PostgreSQL (each test
# starts a throwaway server of its own with scripts/pg.sh).
SEDX_TEST_STORE=postgres cargo test --locked --test it -- exchange:: crash:: hostile:: faults:: domain:: standby::
# The exchange's suites once more on an SM2/SM3 channel (the national
# algorithms; their own attacks and OpenSSL recipes are in national::).
SEDX_TEST_SUITE=sm2 cargo test --locked --test it -- exchange:: crash:: hostile:: faults:: domain:: \
  security:: service:: encodings:: samples:: standby:: transfer:: join:: hub:: cli:: gen:: deploy::
