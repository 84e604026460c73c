#!/usr/bin/env python3
"""Writes TLS test material into DIR: a CA (ca.pem), and server certificates for 127.0.0.1 signed
by it: good.pem/good.key (valid for 30 days) and expired.pem/expired.key (expired 3 days ago).

    make_certs.py DIR
"""
import datetime
import ipaddress
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main(out):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lodestar test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=10)).not_valid_after(now + datetime.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    write(f"{out}/ca.pem", ca.public_bytes(serialization.Encoding.PEM))
    for name, start, end in [("good", now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)),
                             ("expired", now - datetime.timedelta(days=40), now - datetime.timedelta(days=3))]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "origin.test")]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("origin.test"),
                                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        write(f"{out}/{name}.pem", cert.public_bytes(serialization.Encoding.PEM))
        write(f"{out}/{name}.key", key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))


if __name__ == "__main__":
    main(sys.argv[1])
