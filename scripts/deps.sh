#!/bin/sh
# Install the Debian packages that building and testing need, once.
# Usage: scripts/deps.sh [package ...]; with no arguments, the build set.

set -eu

pkgs=${*:-"build-essential libssl-dev libpcre2-dev zlib1g-dev libcdb-dev tinycdb dpkg-dev perl openssl"}

missing=
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
        || missing="$missing $p"
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages:$missing (run as root to install)" >&2
    exit 1
fi

echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends $missing >/dev/null
