#!/usr/bin/env bash
# Idempotent set-up for the test suite (run as root on a fresh machine):
#   1. Debian's chromium for the headless-browser test,
#   2. tests/browser/node_modules (playwright-core),
#   3. the local GraphiQL assets (default target/graphiql-assets, or $1).
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

# 1. chromium
if [ -x /usr/bin/chromium ]; then
  echo "setup: chromium already installed ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
else
  echo "setup: installing chromium (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends chromium >/dev/null
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
