#!/usr/bin/env bash
# Builds the Debian package from a staged tree with dpkg-deb:
#   scripts/package.sh                     release build, Swift runtime linked statically
#   scripts/package.sh --binary PATH       package that binary instead (the test suite's debug build)
#   scripts/package.sh --output DIR        where the .deb goes (default: .build/package)
# The package: /usr/bin/lodestar, the systemd unit, /etc/lodestar/{lodestar.yaml,zones/} as
# conffiles, the man page and bash/zsh/fish completions, the sample geo database; postinst makes
# the lodestar system user. Prints the path of the .deb.
set -euo pipefail
cd "$(dirname "$0")/.."
binary="" output=".build/package"
while (($#)); do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --output) output="$2"; shift 2 ;;
    *) echo "usage: scripts/package.sh [--binary PATH] [--output DIR]" >&2; exit 2 ;;
  esac
done
if [[ -z $binary ]]; then
  swift build -c release --static-swift-stdlib --product lodestar >&2
  binary=.build/release/lodestar
fi
[[ -x $binary ]] || { echo "package.sh: $binary is not an executable" >&2; exit 1; }
# The man page generator of swift-argument-parser (GENERATE_MANUAL: one built already, as the test
# suite does before it runs: SwiftPM locks .build while `swift test` runs).
manual=${GENERATE_MANUAL:-}
if [[ -z $manual ]]; then
  swift build --product generate-manual >&2
  manual=$(swift build --product generate-manual --show-bin-path)/generate-manual
fi
version=$("$binary" --version)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT
install -D -m 0755 "$binary" "$stage/usr/bin/lodestar"
install -D -m 0644 dist/lodestar.service "$stage/lib/systemd/system/lodestar.service"
install -D -m 0640 dist/lodestar.yaml "$stage/etc/lodestar/lodestar.yaml"
install -D -m 0640 zones/example.com.zone "$stage/etc/lodestar/zones/example.com.zone"
install -D -m 0644 geo/sample.mmdb "$stage/usr/share/lodestar/sample.mmdb"
install -D -m 0644 README.md "$stage/usr/share/doc/lodestar/README.md"
mkdir -p "$stage/usr/share/man/man1"
"$manual" "$binary" --output-directory "$stage/usr/share/man/man1" --date "$(date -u +%Y-%m-%d)" >&2
gzip -9n "$stage/usr/share/man/man1/lodestar.1"
install -d "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
  "$stage/usr/share/fish/vendor_completions.d"
"$binary" --generate-completion-script bash >"$stage/usr/share/bash-completion/completions/lodestar"
"$binary" --generate-completion-script zsh >"$stage/usr/share/zsh/vendor-completions/_lodestar"
"$binary" --generate-completion-script fish >"$stage/usr/share/fish/vendor_completions.d/lodestar.fish"
# Depends: the packages that own the shared libraries the binary loads (the Swift runtime, when
# linked dynamically by a development build, is not packaged and must be on the machine).
depends=$(ldd "$binary" | awk '/=> \// {print $3}' | while read -r lib; do
  dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true
done | cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')
install -d "$stage/DEBIAN"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: lodestar
Version: $version
Architecture: $arch
Maintainer: Lodestar <lodestar@example.invalid>
Section: net
Priority: optional
Depends: ${depends:-libc6}, passwd
Suggests: bird2
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Homepage: https://example.invalid/lodestar
Description: GSLB that is the authoritative nameserver of its zones
 Lodestar answers load-balanced names by the client's location (MaxMind
 databases, EDNS Client Subnet), region latency, weights and the health of
 regional origins, which it probes; it withdraws the node's anycast routes
 through BIRD when the node should not take traffic, and serves the rest of
 its zones as an authoritative server.
CONTROL
printf '/etc/lodestar/lodestar.yaml\n/etc/lodestar/zones/example.com.zone\n' >"$stage/DEBIAN/conffiles"
install -m 0755 dist/debian/postinst dist/debian/prerm dist/debian/postrm "$stage/DEBIAN/"
mkdir -p "$output"
deb="$output/lodestar_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >&2
echo "$deb"
