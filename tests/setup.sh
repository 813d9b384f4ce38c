#!/usr/bin/env bash
# Idempotent set-up for the test suite (run as root on a fresh machine):
#   0. PostgreSQL's server binaries (Debian's postgresql-15, or postgresql), which the tests and
#      `stackgate demo` start a private cluster from,
#   1. Debian's chromium for the headless-browser test,
#   2. tests/browser/node_modules (playwright-core),
#   3. the local GraphiQL assets (default target/graphiql-assets, or $1),
#   4. haproxy and curl, for the local cluster script and its test,
#   5. Debian's nats-server (JetStream), which the NATS event bus's tests start privately;
#   and, optional, Debian's yamllint (tests/deploy.rs lints deploy/kubernetes with it when present).
# STACKGATE_SETUP_PG_BIN (default /usr/lib/postgresql/*/bin) is where initdb is looked for.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# An explicit asset directory is taken relative to the caller's directory; the default to the repo root.
if [ $# -ge 1 ]; then
  case "$1" in /*) ASSETS="$1" ;; *) ASSETS="$PWD/$1" ;; esac
else
  ASSETS="$ROOT/target/graphiql-assets"
fi
cd "$ROOT"
GRAPHIQL_VERSION=4.1.2
REACT_VERSION=18.3.1
GRAPHQL_WS_VERSION=5.16.2

# Debian packages, non-interactively (the package lists are updated once per run).
APT_UPDATED=0
apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "setup: cannot install $* here (no apt-get): install it by hand" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ "$APT_UPDATED" = 0 ]; then
    apt-get update -q >/dev/null
    APT_UPDATED=1
  fi
  apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# 0. PostgreSQL server binaries
PG_BIN="${STACKGATE_SETUP_PG_BIN:-/usr/lib/postgresql/*/bin}"
pg_initdb() {
  local f
  for f in $PG_BIN/initdb; do [ -x "$f" ] && { echo "$f"; return 0; }; done
  return 1
}
if INITDB="$(pg_initdb)"; then
  echo "setup: PostgreSQL server binaries already installed ($INITDB)"
else
  echo "setup: PostgreSQL's server binaries (initdb in $PG_BIN) are missing; installing them (apt-get)"
  if apt_install postgresql-15 2>/dev/null || apt_install postgresql; then :; else
    echo "setup: could not install PostgreSQL's server binaries: install postgresql-15 (or postgresql) by hand, or set DATABASE_URL for the demo" >&2
    exit 1
  fi
  if ! INITDB="$(pg_initdb)"; then
    echo "setup: apt-get installed PostgreSQL, but no initdb is in $PG_BIN" >&2
    exit 1
  fi
  echo "setup: PostgreSQL server binaries installed ($INITDB)"
fi

# 1. chromium
if [ -x /usr/bin/chromium ]; then
  echo "setup: chromium already installed ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
else
  echo "setup: installing chromium (apt-get)"
  apt_install chromium
fi

# 1b. yamllint (optional: its absence only skips one check of tests/deploy.rs)
if command -v yamllint >/dev/null; then
  echo "setup: yamllint already installed"
elif apt_install yamllint 2>/dev/null; then
  echo "setup: yamllint installed"
else
  echo "setup: yamllint could not be installed; tests/deploy.rs skips its lint" >&2
fi

# 1c. haproxy and curl, for the local cluster (deploy/local/cluster.sh) and its test
for tool in haproxy curl; do
  if command -v "$tool" >/dev/null; then
    echo "setup: $tool already installed"
  else
    echo "setup: installing $tool (apt-get)"
    apt_install "$tool"
  fi
done

# 1d. nats-server (tests/api/nats.rs starts one on 127.0.0.1 with a temporary store)
if [ -x /usr/sbin/nats-server ]; then
  echo "setup: nats-server already installed ($(/usr/sbin/nats-server --version 2>/dev/null || echo '?'))"
else
  echo "setup: installing nats-server (apt-get)"
  apt_install nats-server
  # The package's own service is not what the tests use: they start their own servers.
  if command -v systemctl >/dev/null && systemctl is-active --quiet nats-server 2>/dev/null; then
    systemctl disable --now nats-server >/dev/null 2>&1 || true
  fi
fi

# 2. node modules of tests/browser
BROWSER_DIR="$ROOT/tests/browser"
if [ -f "$BROWSER_DIR/package-lock.json" ]; then LOCK="$BROWSER_DIR/package-lock.json"; else LOCK="$BROWSER_DIR/package.json"; fi
if [ -d "$BROWSER_DIR/node_modules" ] && [ ! "$BROWSER_DIR/node_modules" -ot "$LOCK" ]; then
  echo "setup: tests/browser/node_modules up to date"
else
  echo "setup: installing tests/browser node modules"
  if [ -f "$BROWSER_DIR/package-lock.json" ]; then
    (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  else
    (cd "$BROWSER_DIR" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  touch "$BROWSER_DIR/node_modules"
fi

# 3. GraphiQL assets
FILES=(react.production.min.js react-dom.production.min.js graphiql.min.js graphiql.min.css graphql-ws.min.js)
missing=0
for f in "${FILES[@]}"; do [ -s "$ASSETS/$f" ] || missing=1; done
if [ "$missing" = 0 ]; then
  echo "setup: GraphiQL assets already in $ASSETS"
else
  echo "setup: fetching GraphiQL assets into $ASSETS"
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  (cd "$TMP" && npm pack --silent --loglevel=error \
    "graphiql@$GRAPHIQL_VERSION" "react@$REACT_VERSION" "react-dom@$REACT_VERSION" \
    "graphql-ws@$GRAPHQL_WS_VERSION" >/dev/null)
  for pkg in "graphiql-$GRAPHIQL_VERSION" "react-$REACT_VERSION" "react-dom-$REACT_VERSION" "graphql-ws-$GRAPHQL_WS_VERSION"; do
    mkdir -p "$TMP/$pkg"
    tar -xzf "$TMP/$pkg.tgz" -C "$TMP/$pkg"
  done
  mkdir -p "$ASSETS"
  cp "$TMP/react-$REACT_VERSION/package/umd/react.production.min.js" "$ASSETS/"
  cp "$TMP/react-dom-$REACT_VERSION/package/umd/react-dom.production.min.js" "$ASSETS/"
  cp "$TMP/graphiql-$GRAPHIQL_VERSION/package/graphiql.min.js" "$ASSETS/"
  cp "$TMP/graphiql-$GRAPHIQL_VERSION/package/graphiql.min.css" "$ASSETS/"
  cp "$TMP/graphql-ws-$GRAPHQL_WS_VERSION/package/umd/graphql-ws.min.js" "$ASSETS/"
  for f in "${FILES[@]}"; do [ -s "$ASSETS/$f" ] || { echo "setup: missing $ASSETS/$f" >&2; exit 1; }; done
fi
echo "setup: done"
