#!/usr/bin/env bash
# Builds the Debian package from a staged tree with dpkg-deb:
#   scripts/package.sh                     release build, Swift runtime linked statically
#   scripts/package.sh --binary PATH       package that binary instead (the test suite's debug build)
#   scripts/package.sh --output DIR        where the .deb goes (default: .build/package)
# The package: /usr/bin/lodestar (stripped), the systemd unit, /etc/lodestar/{lodestar.yaml,zones/}
# as conffiles, the man page and bash/zsh/fish completions, the sample geo database, copyright and
# changelog.gz; postinst makes the lodestar system user (preinst refuses an account of that
# name the package did not make). The binary's debug symbols go into lodestar-dbgsym_VERSION_ARCH.deb
# next to the package (/usr/lib/debug/.build-id/XX/YYYY.debug, found by gdb through the build ID or
# the binary's .gnu_debuglink). Prints the path of the .deb (not of the dbgsym package).
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
# Stripped as dh_strip does it; the debug symbols (compressed) in a lodestar-dbgsym package that
# installs them where gdb looks them up by build ID. The input binary is left as it is.
dbgstage=$(mktemp -d)
chmod 0755 "$dbgstage"
trap 'rm -rf "$stage" "$dbgstage"' EXIT
build_id=$(readelf -n "$binary" | sed -n 's/^ *Build ID: *\([0-9a-f]*\)$/\1/p')
[[ ${#build_id} -gt 2 ]] || { echo "package.sh: $binary has no build ID (link with --build-id)" >&2; exit 1; }
debug_file="usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug"
install -d "$stage/usr/bin" "$dbgstage/$(dirname "$debug_file")"
objcopy --only-keep-debug --compress-debug-sections=zlib "$binary" "$dbgstage/$debug_file"
chmod 0644 "$dbgstage/$debug_file"
strip --remove-section=.comment --remove-section=.note -o "$stage/usr/bin/lodestar" "$binary"
# .gnu_debuglink holds the debug file's name and CRC (as dh_strip leaves it).
objcopy --add-gnu-debuglink="$dbgstage/$debug_file" "$stage/usr/bin/lodestar"
chmod 0755 "$stage/usr/bin/lodestar"
install -D -m 0644 dist/lodestar.service "$stage/lib/systemd/system/lodestar.service"
# 0644 as shipped (the examples hold nothing secret); postinst makes /etc/lodestar 0750 root:lodestar
# and lodestar.yaml 0640.
install -D -m 0644 dist/lodestar.yaml "$stage/etc/lodestar/lodestar.yaml"
install -D -m 0644 zones/example.com.zone "$stage/etc/lodestar/zones/example.com.zone"
install -D -m 0644 geo/sample.mmdb "$stage/usr/share/lodestar/sample.mmdb"
install -D -m 0644 README.md "$stage/usr/share/doc/lodestar/README.md"
# The manual the README points into (docs/), and the design, security and fuzzing notes.
for f in docs/*.md; do install -D -m 0644 "$f" "$stage/usr/share/doc/lodestar/$f"; done
for f in DESIGN.md SECURITY.md; do install -m 0644 "$f" "$stage/usr/share/doc/lodestar/$f"; done
install -m 0644 dist/debian/copyright "$stage/usr/share/doc/lodestar/copyright"
# changelog (native package: changelog.gz): one entry for this version, dated by the last commit (reproducible).
maintainer="Lodestar <lodestar@example.invalid>"
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
when=$(git log -1 --format=%cD 2>/dev/null || date -R)
[[ -z $(git status --porcelain --untracked-files=no 2>/dev/null) ]] || commit="$commit (with uncommitted changes)"
{
  printf 'lodestar (%s) unstable; urgency=medium\n\n' "$version"
  printf '  * Lodestar %s, built from commit %s.\n\n' "$version" "$commit"
  printf ' -- %s  %s\n' "$maintainer" "$when"
} | gzip -9n >"$stage/usr/share/doc/lodestar/changelog.gz"
chmod 0644 "$stage/usr/share/doc/lodestar/changelog.gz"
mkdir -p "$stage/usr/share/man/man1"
"$manual" "$binary" --output-directory "$stage/usr/share/man/man1" --date "$(date -u +%Y-%m-%d)" >&2
# (the generator leaves an empty line between paragraphs, which groff warns about: mdoc's is .Pp)
sed -i 's/^$/.Pp/' "$stage/usr/share/man/man1/lodestar.1"
gzip -9n "$stage/usr/share/man/man1/lodestar.1"
install -d "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
  "$stage/usr/share/fish/vendor_completions.d"
# (bash-completion sources the file: no #! line)
"$binary" --generate-completion-script bash | sed '1{/^#!/d}' >"$stage/usr/share/bash-completion/completions/lodestar"
"$binary" --generate-completion-script zsh >"$stage/usr/share/zsh/vendor-completions/_lodestar"
"$binary" --generate-completion-script fish >"$stage/usr/share/fish/vendor_completions.d/lodestar.fish"
# Lintian overrides, each with its reason (lintian reports no errors otherwise).
overrides="$stage/usr/share/lintian/overrides/lodestar"
install -d "$(dirname "$overrides")"
cat >"$overrides" <<'OVERRIDES'
# Yams, the YAML parser, compiles its own copy of libyaml (Sources/CYaml) into the binary; linking
# Debian's libyaml instead would need a change to Yams' package manifest.
lodestar: embedded-library libyaml [usr/bin/lodestar]
OVERRIDES
if readelf -d "$binary" | grep -Eq '\((RUNPATH|RPATH)\)'; then
  cat >>"$overrides" <<'OVERRIDES'
# A development build (scripts/package.sh --binary): the Swift runtime is loaded from the toolchain.
lodestar: custom-library-search-path RUNPATH * [usr/bin/lodestar]
OVERRIDES
fi
chmod 0644 "$overrides"
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
Maintainer: $maintainer
Section: net
Priority: optional
Depends: ${depends:-libc6}, passwd, init-system-helpers (>= 1.52)
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
# md5sums of everything but the conffiles (dpkg keeps theirs), as dh_md5sums writes it.
(cd "$stage" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0r md5sum) >"$stage/DEBIAN/md5sums"
install -m 0755 dist/debian/preinst dist/debian/postinst dist/debian/prerm dist/debian/postrm "$stage/DEBIAN/"
mkdir -p "$output"
deb="$output/lodestar_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >&2
# The debug symbols, as dh_strip packages them (its doc folder a link to lodestar's).
install -d "$dbgstage/usr/share/doc" "$dbgstage/DEBIAN"
ln -s lodestar "$dbgstage/usr/share/doc/lodestar-dbgsym"
cat >"$dbgstage/DEBIAN/control" <<CONTROL
Package: lodestar-dbgsym
Source: lodestar
Version: $version
Auto-Built-Package: debug-symbols
Architecture: $arch
Maintainer: $maintainer
Section: debug
Priority: optional
Depends: lodestar (= $version)
Installed-Size: $(du -sk --exclude=DEBIAN "$dbgstage" | cut -f1)
Description: debug symbols for lodestar
Build-Ids: $build_id
CONTROL
(cd "$dbgstage" && md5sum "$debug_file") >"$dbgstage/DEBIAN/md5sums"
# The debug sections are zlib-compressed already: gzip comes within a fifth of xz, in half the time.
dpkg-deb --root-owner-group -Zgzip --build "$dbgstage" "$output/lodestar-dbgsym_${version}_${arch}.deb" >&2
echo "$deb"
