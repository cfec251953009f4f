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
#   build/tools/pp_backend_go      t/interop/proxyproto/main.go, built as
#                                  pion_client is, with Debian's
#                                  golang-github-pires-go-proxyproto-dev
#   build/interop-proxyproto-node/node_modules
#                                  proxy-protocol-js, as pinned by
#                                  t/interop/proxyproto-node/package-lock.json
#   build/tools/mbedtls_client     Mbed TLS 3.6's programs/ssl/ssl_client2,
#                                  with MBEDTLS_SSL_DTLS_CONNECTION_ID, from
#                                  Debian's source package (trixie) through
#                                  scripts/debian-src.sh into
#                                  build/src/mbedtls-3.6; only the library
#                                  and that program are built
#
# Idempotent and quick when up to date. A missing go or node/npm (or
# Debian's Go sources) is not an error: the test that needs it skips.
# Exits non-zero only when a build or install that could run failed.
#
# Usage: scripts/interop-deps.sh
#            [pion|node|pion_proxy|pp_go|pp_node|mbedtls ...]
#        (default: pion node)

set -eu

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$TOP/build

what=${*:-"pion node"}

say() { echo "interop-deps: $*"; }

# go_build DIR BIN WHO IMPORT PACKAGE: the Go program in DIR (package
# main, its own directory) into BIN; WHO is what skips without it; IMPORT
# the import path it needs, from Debian's PACKAGE

go_build() {
    dir=$1
    bin=$2
    who=$3
    import=$4
    package=$5
    gopath=/usr/share/gocode

    if [ -x "$bin" ] && [ -z "$(find "$dir" -name '*.go' -newer "$bin")" ]
    then
        return 0
    fi

    if ! command -v go >/dev/null 2>&1; then
        say "no go: not building $bin ($who will skip)"
        return 0
    fi

    if [ ! -d "$gopath/src/$import" ]; then
        say "no $gopath/src/$import ($package): not building $bin"
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
        "t/interop_pion.t" github.com/pion/dtls/v2 \
        golang-github-pion-dtls.v2-dev
}

pion_proxy() {
    go_build "$TOP/bench/pion_proxy" "$BUILD/tools/pion_proxy" \
        "the benchmark's pion run" github.com/pion/dtls/v2 \
        golang-github-pion-dtls.v2-dev
}

pp_go() {
    go_build "$TOP/t/interop/proxyproto" "$BUILD/tools/pp_backend_go" \
        "t/dtls_proxy_protocol.t" github.com/pires/go-proxyproto \
        golang-github-pires-go-proxyproto-dev
}

# node_install SRC DIR PACKAGE WHO: SRC's package.json and package-lock.json
# installed into DIR; PACKAGE is the one checked, WHO what skips without it

node_install() {
    src=$1
    dir=$2
    pkg=$3
    who=$4

    if [ -f "$dir/node_modules/$pkg/package.json" ] \
        && cmp -s "$src/package-lock.json" "$dir/.installed-lock" \
        && cmp -s "$src/package.json" "$dir/package.json"
    then
        return 0
    fi

    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1
    then
        say "no node/npm: not installing $pkg ($who will skip)"
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
        "require('./package-lock.json').packages['node_modules/$pkg'].version")
    got=$(cd "$dir" && node -p \
        "require('./node_modules/$pkg/package.json').version")

    if [ "$want" != "$got" ]; then
        say "$pkg $got installed, the lock file says $want"
        return 1
    fi

    cp "$src/package-lock.json" "$dir/.installed-lock"
    say "installed $pkg $got in $dir"
}

node_client() {
    node_install "$TOP/t/interop/node" "$BUILD/interop-node" \
        node-dtls-client t/interop_node.t
}

pp_node() {
    node_install "$TOP/t/interop/proxyproto-node" \
        "$BUILD/interop-proxyproto-node" proxy-protocol-js \
        t/dtls_proxy_protocol.t
}

# Mbed TLS: its release tree has its generated sources, so make builds it
# without python3 (GEN_FILES=); python3 runs only if scripts/config.py
# must turn the CID option on

mbedtls() {
    src=$BUILD/src/mbedtls-3.6
    bin=$BUILD/tools/mbedtls_client
    conf=$src/include/mbedtls/mbedtls_config.h
    who=t/interop_mbedtls.t

    if [ -x "$bin" ] && [ "$bin" -nt "$conf" ]; then
        return 0
    fi

    if [ ! -f "$conf" ] && [ "$(id -u)" != 0 ]; then
        say "no $src and not root: not fetching Mbed TLS ($who will skip)"
        return 0
    fi

    sh "$TOP/scripts/deps.sh" --optional make gcc libc6-dev

    if ! command -v make >/dev/null 2>&1 || ! command -v cc >/dev/null 2>&1
    then
        say "no make or cc: not building $bin ($who will skip)"
        return 0
    fi

    if ! sh "$TOP/scripts/debian-src.sh" mbedtls 3.6 "$src"; then
        say "no Mbed TLS 3.6 source: not building $bin ($who will skip)"
        return 0
    fi

    if ! grep -q '^#define MBEDTLS_SSL_DTLS_CONNECTION_ID$' "$conf"; then
        sh "$TOP/scripts/deps.sh" --optional python3
        if ! (cd "$src" && python3 scripts/config.py \
                  set MBEDTLS_SSL_DTLS_CONNECTION_ID)
        then
            say "scripts/config.py could not set" \
                "MBEDTLS_SSL_DTLS_CONNECTION_ID"
            return 1
        fi
    fi

    if ! make -C "$src" -j2 GEN_FILES= lib >"$src/ngx-dtls-build.log" 2>&1 \
       || ! make -C "$src/programs" GEN_FILES= ssl/ssl_client2 \
                >>"$src/ngx-dtls-build.log" 2>&1
    then
        tail -n 20 "$src/ngx-dtls-build.log"
        say "building $bin failed"
        return 1
    fi

    mkdir -p "$BUILD/tools"
    cp "$src/programs/ssl/ssl_client2" "$bin.new"
    mv -f "$bin.new" "$bin"
    say "built $bin"
}

rc=0

for w in $what; do
    case $w in
    pion) pion || rc=1 ;;
    pion_proxy) pion_proxy || rc=1 ;;
    node) node_client || rc=1 ;;
    pp_go) pp_go || rc=1 ;;
    pp_node) pp_node || rc=1 ;;
    mbedtls) mbedtls || rc=1 ;;
    *) say "unknown: $w"; rc=2 ;;
    esac
done

exit $rc
