"""A development certificate authority: the edge's HTTPS certificate and every service's mTLS pair.

Production gets its certificates from cert-manager (see deploy/); this exists so that one command
runs the whole suite over real TLS on a bare machine, and so tests use real mutual TLS. Each
certificate carries its SPIFFE ID (``spiffe://railguard.local/ns/railguard/sa/<name>``) as its one
URI SAN, the identity the services check.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from servicekit.spiffe import DEFAULT_TRUST_DOMAIN, service_of_certificate, spiffe_id_for

__all__ = ["CLIENT_IDENTITIES", "SERVICE_IDENTITIES", "ensure_dev_pki", "issue_certificate"]

SERVICE_IDENTITIES = ("auth", "workspaces", "keys", "credentials", "edge")
# callers from the wider platform: the workflow runtime may read credential plaintext (UseCredential)
CLIENT_IDENTITIES = ("runtime",)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Railguard dev"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _create_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Railguard dev CA"))
        .issuer_name(_name("Railguard dev CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    (directory / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        directory / "ca.key",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return cert, key


def issue_certificate(
    directory: Path,
    common_name: str,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    extra_dns: Iterable[str] = (),
    *,
    spiffe_id: str | None = None,
    trust_domain: str = DEFAULT_TRUST_DOMAIN,
) -> None:
    """Issue ``<common_name>.crt``/``.key`` for both server and client authentication.

    The URI SAN is ``spiffe_id`` when given (``""``: none, for tests that prove refusal), else
    the SPIFFE ID of ``common_name`` in ``trust_domain``.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(common_name), x509.DNSName("localhost")]
    uri = spiffe_id_for(common_name, trust_domain) if spiffe_id is None else spiffe_id
    if uri:
        sans.append(x509.UniformResourceIdentifier(uri))
    sans += [x509.DNSName(d) for d in extra_dns]
    sans += [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (directory / f"{common_name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        directory / f"{common_name}.key",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def ensure_dev_pki(
    directory: Path, identities: Iterable[str] = SERVICE_IDENTITIES + CLIENT_IDENTITIES
) -> Path:
    """Create the dev CA and one certificate per identity unless they exist; returns the folder."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_crt, ca_key_path = directory / "ca.crt", directory / "ca.key"
    if ca_crt.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_crt.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        ca_key = loaded
    else:
        ca_cert, ca_key = _create_ca(directory)
    for identity in identities:
        crt = directory / f"{identity}.crt"
        # a certificate from before SPIFFE IDs would be refused by every service: reissue it
        if (
            not crt.exists()
            or service_of_certificate(crt.read_bytes(), DEFAULT_TRUST_DOMAIN) is None
        ):
            issue_certificate(directory, identity, ca_cert, ca_key)
    return directory


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".state/certs")
    ensure_dev_pki(target, SERVICE_IDENTITIES + CLIENT_IDENTITIES + tuple(sys.argv[2:]))
    print(f"dev PKI ready in {target}")
