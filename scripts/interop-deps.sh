#!/bin/sh
# The clients of the interop tests that are not Debian binaries, and the
# benchmark's pion proxy:
#
#   build/tools/pion_client        t/interop/pion/main.go, built offline in
#                                  GOPATH mode with Debian's
#                                  golang-github-pion-dtls.v2-dev
#   build/interop-node/node_modules node-dtls-client, as pinned by
#                                  t/interop/node/package-lock.json
#   build/tools/pion_proxy         bench/pion_proxy/main.go, built as
#                                  pion_client is (only when asked for)
#
# Idempotent and quick when up to date. A missing go or node/npm (or
# Debian's pion sources) is not an error: the test that needs it skips.
# Exits non-zero only when a build or install that could run failed.
#
# Usage: scripts/interop-deps.sh [pion|node|pion_proxy ...]
#        (default: pion node)

set -eu

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$TOP/build

what=${*:-"pion node"}

say() { echo "interop-deps: $*"; }

# go_build DIR BIN WHO: the Go program in DIR (package main, its own
# directory) into BIN; WHO is what skips without it

go_build() {
    dir=$1
    bin=$2
    who=$3
    gopath=/usr/share/gocode

    if [ -x "$bin" ] && [ -z "$(find "$dir" -name '*.go' -newer "$bin")" ]
    then
        return 0
    fi

    if ! command -v go >/dev/null 2>&1; then
        say "no go: not building $bin ($who will skip)"
        return 0
    fi

    if [ ! -d "$gopath/src/github.com/pion/dtls/v2" ]; then
        say "no $gopath/src/github.com/pion/dtls/v2" \
            "(golang-github-pion-dtls.v2-dev): not building $bin"
        return 0
    fi

    mkdir -p "$BUILD/tools" "$BUILD/go-cache"

    # GOPATH mode: Debian's sources resolve the imports, nothing is
    # downloaded; the cache stays in build/

    if ! (cd "$dir" && \
          env GO111MODULE=off GOPATH="$gopath" GOFLAGS= GOPROXY=off \
              GOCACHE="$BUILD/go-cache" CGO_ENABLED=0 \
              go build -o "$bin.new" .)
    then
        rm -f "$bin.new"
        say "building $bin failed"
        return 1
    fi

    mv -f "$bin.new" "$bin"
    say "built $bin"
}

pion() {
    go_build "$TOP/t/interop/pion" "$BUILD/tools/pion_client" \
        "t/interop_pion.t"
}

pion_proxy() {
    go_build "$TOP/bench/pion_proxy" "$BUILD/tools/pion_proxy" \
        "the benchmark's pion run"
}

node_client() {
    src=$TOP/t/interop/node
    dir=$BUILD/interop-node

    if [ -f "$dir/node_modules/node-dtls-client/package.json" ] \
        && cmp -s "$src/package-lock.json" "$dir/.installed-lock" \
        && cmp -s "$src/package.json" "$dir/package.json"
    then
        return 0
    fi

    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1
    then
        say "no node/npm: not installing node-dtls-client" \
            "(t/interop_node.t will skip)"
        return 0
    fi

    mkdir -p "$dir"
    rm -rf "$dir/node_modules" "$dir/.installed-lock"
    cp "$src/package.json" "$src/package-lock.json" "$dir/"

    # npm install from the lock file rather than npm ci: node-aead-crypto,
    # an optional dependency of node-dtls-client that Node.js 10 and later
    # do not use, names platform packages the registry does not have, and
    # npm ci refuses a lock file without them.  With the lock file present
    # npm install takes the versions and integrity hashes it pins.

    if ! (cd "$dir" && CI=true npm install --omit=optional --no-audit \
              --no-fund --ignore-scripts --loglevel=error </dev/null)
    then
        say "npm install in $dir failed"
        return 1
    fi

    want=$(cd "$src" && node -p \
        'require("./package-lock.json").packages["node_modules/node-dtls-client"].version')
    got=$(cd "$dir" && node -p \
        'require("./node_modules/node-dtls-client/package.json").version')

    if [ "$want" != "$got" ]; then
        say "node-dtls-client $got installed, the lock file says $want"
        return 1
    fi

    cp "$src/package-lock.json" "$dir/.installed-lock"
    say "installed node-dtls-client $got in $dir"
}

rc=0

for w in $what; do
    case $w in
    pion) pion || rc=1 ;;
    pion_proxy) pion_proxy || rc=1 ;;
    node) node_client || rc=1 ;;
    *) say "unknown: $w"; rc=2 ;;
    esac
done

exit $rc
