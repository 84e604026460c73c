#!/usr/bin/env python3
"""Builds geo/sample.mmdb (GeoLite2-City layout) from geo/sample.csv.

usage: python3 geo/build_sample.py [OUT]   (needs: pip install mmdb-writer netaddr)
OUT defaults to geo/sample.mmdb; the output is byte-for-byte reproducible.

The output is an IPv6 database that also holds IPv4 (under ::ffff:0:0/96 and ::/96, as MaxMind's),
so lookups of either family work through libmaxminddb exactly as on a real GeoLite2-City file.
"""
import csv
import os
import sys
import time
from unittest import mock

from mmdb_writer import MMDBWriter
from netaddr import IPSet

here = os.path.dirname(os.path.abspath(__file__))
writer = MMDBWriter(ip_version=6, database_type="GeoLite2-City", languages=["en"],
                    description={"en": "Lodestar sample geo database (documentation ranges)"},
                    ipv4_compatible=True)
with open(os.path.join(here, "sample.csv")) as f:
    for row in csv.reader(line for line in f if not line.startswith("#")):
        network, continent, country, subdivision, lat, lon = row
        writer.insert_network(IPSet([network]), {
            "continent": {"code": continent},
            "country": {"iso_code": country},
            "subdivisions": [{"iso_code": subdivision}],
            "location": {"latitude": float(lat), "longitude": float(lon)},
        })
# The metadata's build_epoch is the only varying byte: pin it so the file is reproducible.
with mock.patch.object(time, "time", return_value=1_795_000_000):
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "sample.mmdb")
    writer.to_db_file(out)
print(f"wrote {out}")
