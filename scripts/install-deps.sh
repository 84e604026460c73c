#!/usr/bin/env bash
# Installs what Lodestar needs on Debian 12, skipping what is already there.
#   scripts/install-deps.sh          runtime: libldns, libmaxminddb, dig
#   scripts/install-deps.sh --test   also what the tests need: knot (differential), bird2 (anycast), iproute2 (ip netns), promtool
#                                    (prometheus), dnsdist (PROXY protocol), etcd-server (cluster), systemd-analyze, man, dnspython, GeoLite2-City,
#                                    cryptography (test certificates)
#   scripts/install-deps.sh --bench  also the benchmark peers: knot, nsd, gdnsd, PowerDNS (LUA records), dnsperf
set -euo pipefail
packages=(libldns-dev libmaxminddb-dev bind9-dnsutils pkg-config)
for arg in "$@"; do
  case "$arg" in
    --test) packages+=(knot knot-dnsutils curl bird2 iproute2 prometheus dnsdist systemd man-db etcd-server lintian) ;;
    --bench) packages+=(knot knot-dnsutils nsd gdnsd dnsperf ldnsutils gcc iproute2 pdns-server pdns-backend-bind pdns-backend-geoip) ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  # Daemons pulled in here (knot, nsd, gdnsd, pdns, bird) must not start as services: tests start their own.
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  $sudo rm -f /usr/sbin/policy-rc.d
fi
if [[ " $* " == *" --test "* ]]; then
  python3 -c 'import dns.message' 2>/dev/null || python3 -m pip install -q dnspython
  # A real GeoLite2-City database for the geo tests.
  python3 -c 'import _maxminddb_geolite2' 2>/dev/null || python3 -m pip install -q maxminddb-geolite2
  # The writer that rebuilds geo/sample.mmdb (a test checks the committed file is reproducible).
  python3 -c 'import mmdb_writer, netaddr' 2>/dev/null || python3 -m pip install -q mmdb-writer netaddr
  # Test certificates for the HTTPS checks (a CA, a valid and an expired server certificate).
  python3 -c 'import cryptography.x509' 2>/dev/null || python3 -m pip install -q cryptography
fi
