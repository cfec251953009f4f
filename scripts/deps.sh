#!/bin/sh
# Install the Debian packages that building and testing need, once.
# Usage: scripts/deps.sh [--optional] [package ...]; with no packages, the
# build set.  With --optional (the test clients of make test), a user who
# cannot install says what is missing and goes on: the tests that need a
# missing client skip, saying so.

set -eu

optional=
if [ "${1:-}" = "--optional" ]; then
    optional=1
    shift
fi

pkgs=${*:-"build-essential libssl-dev libpcre2-dev zlib1g-dev libcdb-dev tinycdb dpkg-dev perl openssl"}

missing=
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
        || missing="$missing $p"
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    if [ -n "$optional" ]; then
        echo "deps: not installed:$missing (not root); the tests that" \
             "need them skip" >&2
        exit 0
    fi

    echo "deps: missing packages:$missing (run as root to install)" >&2
    exit 1
fi

echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends $missing >/dev/null
