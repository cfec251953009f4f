#!/bin/sh
# Put the source of nginx, OpenSSL or Mbed TLS, from Debian's source
# package, in DIR:
#
#   scripts/debian-src.sh nginx 1.30 build/src/nginx-1.30
#   scripts/debian-src.sh openssl 3.5 build/src/openssl-3.5
#   scripts/debian-src.sh mbedtls 3.6 build/src/mbedtls-3.6
#
# VERSION is an upstream version, or its start (1.30: the newest 1.30.x
# there is).  The Debian suite that has it:
#
#   nginx    1.22  bookworm (Debian 12)     openssl  3.0  bookworm
#            1.26  trixie   (Debian 13)              3.5  trixie
#            1.30  sid      (unstable)
#
#   mbedtls  3.6  trixie (the CID peer of t/dtls_cid.t)
#
# or DEBIAN_SUITE=, for another.  The system's own suite gets a deb-src
# entry beside its deb entry if it has none.  Any other suite gets a
# source-only entry (Types: deb-src) of its own, on the system's mirror,
# in /etc/apt/sources.list.d/ngx-dtls-SUITE.sources: apt-get source reads
# it, nothing is installed from it.  The orig tarball (the upstream
# release; Debian's patches are not needed) is unpacked into DIR.
# A source tree already in DIR is used as it is (NGINX_SRC=, OPENSSL_SRC=).

set -eu

usage="usage: $0 nginx|openssl|mbedtls VERSION DIR"

pkg=${1:?$usage}
version=${2:?$usage}
dir=${3:?$usage}

case $pkg in
nginx)   tree="configure src/core/nginx.c" ;;
openssl) tree="Configure include/openssl/ssl.h.in" ;;
mbedtls) tree="include/mbedtls/mbedtls_config.h library/ssl_tls.c" ;;
*)       echo "$usage" >&2; exit 1 ;;
esac

is_tree() {
    for f in $tree; do
        [ -f "$dir/$f" ] || return 1
    done
}

is_tree && exit 0

if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    echo "debian-src: $dir is not an $pkg source tree" >&2
    exit 1
fi

. /etc/os-release
system=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}

case "$pkg $version" in
"nginx 1.22"*)   suite=bookworm ;;
"nginx 1.26"*)   suite=trixie ;;
"nginx 1.30"*)   suite=sid ;;
"openssl 3.0"*)  suite=bookworm ;;
"openssl 3.5"*)  suite=trixie ;;
"mbedtls 3.6"*)  suite=trixie ;;
*)               suite= ;;
esac

suite=${DEBIAN_SUITE:-$suite}

if [ -z "$suite" ]; then
    echo "debian-src: no Debian suite known for $pkg $version;" \
         "name one with DEBIAN_SUITE=" >&2
    exit 1
fi

lists=/etc/apt/sources.list.d
own=$lists/ngx-dtls-$suite.sources
updated=

has_deb_src() {
    grep -Rqs -e '^deb-src ' -e '^Types:.*deb-src' \
        /etc/apt/sources.list $lists/
}

# the URIs and Signed-By of the system's main suite (not -security)

system_mirror() {
    if [ -f $lists/debian.sources ]; then
        awk -v s="$system" 'BEGIN { RS = "" }
            $0 ~ ("Suites:[^\n]*[ \t]" s "([ \t\n]|$)") {
                if (match($0, /URIs:[^\n]*/))
                    uri = substr($0, RSTART + 6, RLENGTH - 6)
                if (match($0, /Signed-By:[^\n]*/))
                    key = substr($0, RSTART + 11, RLENGTH - 11)
                print uri "|" key; exit
            }' $lists/debian.sources
    elif [ -f /etc/apt/sources.list ]; then
        awk -v s="$system" '$1 == "deb" {
                for (i = 2; i <= NF; i++) {
                    if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; continue }
                    if ($(i + 1) == s) { print $i "|"; exit }
                    break
                }
            }' /etc/apt/sources.list
    fi
}

if [ "$suite" = "$system" ]; then
    if ! has_deb_src; then
        echo "debian-src: enabling a deb-src entry"
        if [ -f $lists/debian.sources ]; then
            sed 's/^Types: deb$/Types: deb-src/' $lists/debian.sources \
                > $lists/ngx-dtls-src.sources
        else
            sed -n 's/^deb /deb-src /p' /etc/apt/sources.list \
                > $lists/ngx-dtls-src.list
        fi
    fi

elif [ ! -f "$own" ]; then
    mirror=$(system_mirror)
    uri=$(echo "$mirror" | sed 's/|.*//; s/^ *//; s/ .*//')
    key=$(echo "$mirror" | sed -n 's/^[^|]*|//p' | sed 's/^ *//')

    if [ -z "$uri" ]; then
        echo "debian-src: no $system mirror in the system's sources" \
             "list to use for $suite" >&2
        exit 1
    fi

    echo "debian-src: source-only entry for $suite ($uri) in $own"
    {
        echo "# written by ngx_dtls scripts/debian-src.sh: Debian's"
        echo "# $suite sources for apt-get source; nothing is installed"
        echo "# from it"
        echo "Types: deb-src"
        echo "URIs: $uri"
        echo "Suites: $suite"
        echo "Components: main"
        [ -n "$key" ] && echo "Signed-By: $key"
    } > "$own.new"
    mv -f "$own.new" "$own"

    apt-get update -q >/dev/null
    updated=1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# the Debian versions of the package whose upstream version is VERSION or
# starts with "VERSION.", newest first

candidates() {
    apt-cache showsrc "$pkg" 2>/dev/null \
        | sed -n 's/^Version: //p' \
        | while read -r v; do
              up=${v#*:}
              up=${up%-*}
              case $up in
              "$version"|"$version".*) echo "$v" ;;
              esac
          done \
        | sort -u -r -V
}

# the SHA-256 that the Sources index gives for file $2 of version $1

index_sha256() {
    apt-cache showsrc "$pkg" 2>/dev/null | awk -v v="$1" -v f="$2" '
        /^Version:/ { in_v = ($2 == v) }
        /^Checksums-Sha256:/ { sums = 1; next }
        /^[^ ]/ { sums = 0 }
        in_v && sums && $3 == f { print $1; exit }'
}

# apt-get source fetches the .dsc, the orig tarball and Debian's changes;
# only the orig tarball is used, so a mirror that lacks the others will
# do, once the tarball matches the index

fetch() {
    for v in $(candidates); do
        up=${v#*:}
        up=${up%-*}

        (cd "$tmp" && apt-get source -q --download-only "$pkg=$v" \
             >"$tmp/apt.log" 2>&1) || true

        orig=$(ls "$tmp/${pkg}_$up.orig.tar."* 2>/dev/null \
               | grep -v '\.asc$' | head -n 1) || true
        [ -n "$orig" ] || continue

        sum=$(index_sha256 "$v" "${orig##*/}")
        if [ -n "$sum" ] \
           && [ "$(sha256sum "$orig" | cut -d' ' -f1)" = "$sum" ]
        then
            got=$v
            return 0
        fi

        echo "debian-src: ${orig##*/} does not match the index" >&2
        rm -f "$orig"
    done
    return 1
}

got=
if ! fetch; then
    if [ -z "$updated" ]; then
        apt-get update -q >/dev/null 2>&1 || true
    fi
    fetch || {
        echo "debian-src: apt-get source $pkg ($version, $suite) failed:" >&2
        sed -n 's/^E: /  /p' "$tmp/apt.log" >&2
        exit 1
    }
fi

mkdir -p "$dir"
tar -xf "$orig" -C "$dir" --strip-components=1
echo "debian-src: $pkg $up (Debian $got, $suite) in $dir"
