"""SPIFFE identities: ``spiffe://<trust-domain>/ns/<namespace>/sa/<service>`` in a URI SAN.

A Railguard certificate (an X.509-SVID) carries exactly one URI SAN, its SPIFFE ID; the caller
identity interceptor reads the service name from it instead of the certificate's common name, so
a certificate whose CN says ``edge`` is not ``edge`` unless its SPIFFE ID says so, in the trust
domain this process is configured with (``RAILGUARD_TRUST_DOMAIN``, default ``railguard.local``).

A serving process reads the URI SANs gRPC already extracted from the verified peer certificate
(:func:`service_of_uris`); only tools that hold a PEM (the dev CA) parse one, so ``cryptography``'s
X.509 module is imported on that path alone (it costs a service about 8 MB of resident memory).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_TRUST_DOMAIN",
    "SpiffeId",
    "parse_spiffe_id",
    "service_of_certificate",
    "service_of_uris",
    "spiffe_id_for",
]

DEFAULT_TRUST_DOMAIN = "railguard.local"
DEFAULT_NAMESPACE = "railguard"

# SPIFFE spec: the trust domain is lowercase letters, digits, '.', '-', '_'; path segments are
# letters, digits, '.', '-', '_' and neither empty, '.' nor '..'.
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
_ID = re.compile(r"spiffe://([a-z0-9._-]+)/ns/([A-Za-z0-9._-]+)/sa/([A-Za-z0-9._-]+)")


@dataclass(frozen=True, slots=True)
class SpiffeId:
    """A workload identity in the Kubernetes shape Railguard uses."""

    trust_domain: str
    namespace: str
    service: str

    def __str__(self) -> str:
        return f"spiffe://{self.trust_domain}/ns/{self.namespace}/sa/{self.service}"


def spiffe_id_for(
    service: str, trust_domain: str = DEFAULT_TRUST_DOMAIN, namespace: str = DEFAULT_NAMESPACE
) -> str:
    """The SPIFFE ID a certificate for ``service`` carries."""
    if not _TRUST_DOMAIN.fullmatch(trust_domain):
        raise ValueError(f"invalid SPIFFE trust domain {trust_domain!r}")
    text = str(SpiffeId(trust_domain, namespace, service))
    if parse_spiffe_id(text) is None:
        raise ValueError(f"invalid SPIFFE ID {text!r}")
    return text


def parse_spiffe_id(uri: str) -> SpiffeId | None:
    """The parts of ``spiffe://td/ns/<ns>/sa/<sa>``, or None for anything else."""
    m = _ID.fullmatch(uri)
    if m is None or any(part in {".", ".."} for part in m.groups()[1:]):
        return None
    return SpiffeId(*m.groups())


@functools.lru_cache(maxsize=256)
def _uri_sans(pem: bytes) -> tuple[str, ...]:
    from cryptography import x509  # only PEM-holding tools (the dev CA) parse certificates

    cert = x509.load_pem_x509_certificate(pem)
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(ext.value.get_values_for_type(x509.UniformResourceIdentifier))


def service_of_certificate(
    pem: bytes, trust_domain: str, namespace: str | None = None
) -> str | None:
    """The service named by the certificate's one SPIFFE ID in ``trust_domain``, else None.

    None (fail closed) when the certificate has no URI SAN, more than one, a URI that is not a
    well-formed Railguard SPIFFE ID, another trust domain, or (when given) another namespace.
    """
    try:
        uris = _uri_sans(pem)
    except ValueError:
        return None
    return service_of_uris(uris, trust_domain, namespace)


def service_of_uris(
    uris: Sequence[str], trust_domain: str, namespace: str | None = None
) -> str | None:
    """:func:`service_of_certificate` from a certificate's URI SANs, all of them, in any order.

    A server gets them from gRPC's auth context (``peer_uri``: every URI SAN of the verified
    client certificate), so a call needs no certificate parsing of its own.
    """
    if len(uris) != 1:
        return None
    parsed = parse_spiffe_id(uris[0])
    if parsed is None or parsed.trust_domain != trust_domain:
        return None
    if namespace is not None and parsed.namespace != namespace:
        return None
    return parsed.service
