#!/usr/bin/env bash
# The test command: installs what is missing, then checks formatting, lints and
# runs every test (the integration tests start their own OpenSSH sshd).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --all-targets
