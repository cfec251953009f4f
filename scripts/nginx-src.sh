#!/bin/sh
# Put nginx 1.22.1 source in DIR (default build/src/nginx), from Debian's
# source package; enables a deb-src entry if the system has none.
# NGINX_SRC=/path skips all of this: that tree is used as it is.

set -eu

dir=${1:-build/src/nginx}
version=1.22.1

[ -f "$dir/configure" ] && [ -f "$dir/src/core/nginx.c" ] && exit 0

if [ -n "${NGINX_SRC:-}" ]; then
    echo "nginx-src: NGINX_SRC=$NGINX_SRC is not an nginx source tree" >&2
    exit 1
fi

has_deb_src() {
    grep -Rqs -e '^deb-src ' -e '^Types:.*deb-src' \
        /etc/apt/sources.list /etc/apt/sources.list.d/
}

if ! has_deb_src; then
    echo "nginx-src: enabling a deb-src entry"
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        sed 's/^Types: deb$/Types: deb-src/' \
            /etc/apt/sources.list.d/debian.sources \
            > /etc/apt/sources.list.d/ngx-dtls-src.sources
    else
        sed -n 's/^deb /deb-src /p' /etc/apt/sources.list \
            > /etc/apt/sources.list.d/ngx-dtls-src.list
    fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fetch() {
    for v in $(apt-cache showsrc nginx 2>/dev/null \
                   | sed -n "s/^Version: \($version-.*\)/\1/p" | sort -r)
    do
        (cd "$tmp" && apt-get source -q --download-only "nginx=$v" \
             >/dev/null 2>&1) && return 0
    done
    return 1
}

if ! fetch; then
    apt-get update -q >/dev/null 2>&1 || true
    fetch || {
        echo "nginx-src: apt-get source nginx ($version) failed" >&2
        exit 1
    }
fi

# the orig tarball is nginx's own release; Debian's patches are not needed
orig=$(ls "$tmp"/nginx_$version.orig.tar.gz)
mkdir -p "$dir"
tar -xzf "$orig" -C "$dir" --strip-components=1
echo "nginx-src: nginx $version in $dir"
