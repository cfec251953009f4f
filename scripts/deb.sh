#!/bin/sh
# Build libnginx-mod-stream-dtls_<version>_<arch>.deb against the installed
# nginx-dev (Debian 12): copies the module sources and packaging/debian into
# build/deb/, writes debian/changelog, runs dpkg-buildpackage (debhelper with
# dh_nginx) and leaves the package in build/.
# Usage: scripts/deb.sh TOP BUILD VERSION

set -eu

top=$1
build=$2
version=$3
pkg=libnginx-mod-stream-dtls

if ! grep -q '^12\.' /etc/debian_version 2>/dev/null; then
    echo "deb: needs Debian 12 (bookworm)" >&2
    exit 1
fi

# nginx-dev pulls in nginx: keep its service from being started meanwhile
if ! dpkg-query -W -f='${Status}' nginx-dev 2>/dev/null \
        | grep -q 'ok installed' && [ "$(id -u)" = 0 ] \
        && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
sh "$top/scripts/deps.sh" build-essential dpkg-dev debhelper nginx-dev \
    libssl-dev libpcre2-dev zlib1g-dev libcdb-dev

src=$build/deb/$pkg-$version
rm -rf "$build/deb"
mkdir -p "$src/src"
cp "$top/config" "$top/ngx_dtls_module.c" "$src/"
cp "$top"/src/*.c "$top"/src/*.h "$src/src/"
cp -r "$top/packaging/debian" "$src/debian"

cat > "$src/debian/changelog" << END
$pkg ($version) unstable; urgency=medium

  * Built from ngx_dtls $(git -C "$top" describe --always --dirty 2>/dev/null \
        || echo unknown) against nginx-dev $(dpkg-query -W \
        -f='${Version}' nginx-dev).

 -- ngx_dtls developers <ngx-dtls@localhost>  $(date -R)
END

(cd "$src" && dpkg-buildpackage -b -us -uc) > "$build/deb/build.log" 2>&1 || {
    tail -40 "$build/deb/build.log" >&2
    echo "deb: dpkg-buildpackage failed, see $build/deb/build.log" >&2
    exit 1
}

arch=$(dpkg --print-architecture)
deb=${pkg}_${version}_${arch}.deb
cp "$build/deb/$deb" "$build/$deb"
echo "deb: $build/$deb"
dpkg-deb -f "$build/$deb" Package Version Depends
