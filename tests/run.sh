#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (tests/setup.sh:
# chromium, playwright-core, GraphiQL's assets), then runs every test against real PostgreSQL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tests/setup.sh
cargo test --locked "$@"
