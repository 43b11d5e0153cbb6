"""Caller identity is the SPIFFE ID in the client certificate's URI SAN, never its common name.

A real server with mutual TLS, and client certificates from the same trusted CA that differ only
in their URI SAN: the right CN with a wrong, foreign or missing SPIFFE ID is refused.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from railguard.workspaces.v1 import workspaces_service_pb2_grpc
from servicekit import Principal, Registration, Settings, Wiring
from servicekit.devca import issue_certificate
from servicekit.spiffe import (
    parse_spiffe_id,
    service_of_certificate,
    service_of_uris,
    spiffe_id_for,
)
from servicekit.tls import TlsFiles, client_credentials
from testkit import principal_metadata, running, test_settings


class _Echo(workspaces_service_pb2_grpc.WorkspacesServiceServicer):
    async def ListWorkspaces(self, request: object, context: object) -> pb.ListWorkspacesResponse:
        return pb.ListWorkspacesResponse()


async def _build(settings: Settings) -> Wiring:
    return Wiring(
        [
            Registration(
                workspaces_service_pb2_grpc.add_WorkspacesServiceServicer_to_server, _Echo(), pb
            )
        ]
    )


def _issue(pki: Path, folder: str, spiffe_id: str | None, cn: str = "edge") -> Path:
    """A client certificate from the trusted CA with CN ``cn`` and the given URI SAN."""
    out = pki.parent / folder
    out.mkdir(exist_ok=True)
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    issue_certificate(out, cn, ca, key, spiffe_id=spiffe_id)
    return out / cn


async def _list_as(cert: Path, pki: Path, port: int) -> grpc.StatusCode:
    files = TlsFiles(cert.with_suffix(".crt"), cert.with_suffix(".key"), pki / "ca.crt")
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", client_credentials(files)) as channel:
        stub = workspaces_service_pb2_grpc.WorkspacesServiceStub(channel)
        try:
            await stub.ListWorkspaces(
                pb.ListWorkspacesRequest(),
                metadata=principal_metadata(Principal(user_id="u1")),
                timeout=5,
            )
        except grpc.aio.AioRpcError as err:
            return err.code()
        return grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("label", "spiffe_id", "expected"),
    [
        ("right SPIFFE ID", "spiffe://railguard.local/ns/railguard/sa/edge", grpc.StatusCode.OK),
        ("no URI SAN", "", grpc.StatusCode.PERMISSION_DENIED),
        (
            "other service",
            "spiffe://railguard.local/ns/railguard/sa/keys",
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            "foreign trust domain",
            "spiffe://evil.example/ns/railguard/sa/edge",
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            "not SPIFFE",
            "https://railguard.local/ns/railguard/sa/edge",
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        ("wrong shape", "spiffe://railguard.local/edge", grpc.StatusCode.PERMISSION_DENIED),
    ],
)
async def test_the_caller_is_the_spiffe_id_not_the_common_name(
    pki: Path, label: str, spiffe_id: str, expected: grpc.StatusCode
) -> None:
    cert = _issue(pki, f"spiffe-{label.replace(' ', '-')}", spiffe_id)
    async with running(test_settings("workspaces", pki), _build) as server:
        assert await _list_as(cert, pki, server.port) == expected


async def test_a_spiffe_id_of_edge_is_edge_whatever_the_common_name(pki: Path) -> None:
    cert = _issue(
        pki, "spiffe-cn-mismatch", "spiffe://railguard.local/ns/railguard/sa/edge", cn="x"
    )
    async with running(test_settings("workspaces", pki), _build) as server:
        assert await _list_as(cert, pki, server.port) == grpc.StatusCode.OK


async def test_the_trust_domain_is_configurable(pki: Path) -> None:
    cert = _issue(pki, "spiffe-prod-domain", "spiffe://prod.example/ns/railguard/sa/edge")
    settings = test_settings("workspaces", pki, extra={"RAILGUARD_TRUST_DOMAIN": "prod.example"})
    async with running(settings, _build) as server:
        assert await _list_as(cert, pki, server.port) == grpc.StatusCode.OK
        # the dev certificates (railguard.local) are strangers in that trust domain
        assert await _list_as(pki / "edge", pki, server.port) == grpc.StatusCode.PERMISSION_DENIED


def test_two_uri_sans_are_no_identity(pki: Path, tmp_path: Path) -> None:
    import datetime as dt

    from cryptography.hazmat.primitives import hashes

    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    uris = [
        x509.UniformResourceIdentifier(spiffe_id_for("edge")),
        x509.UniformResourceIdentifier(spiffe_id_for("keys")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(ca.subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(uris), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    assert service_of_certificate(pem, "railguard.local") is None
    # the serving path reads the same URI SANs from gRPC's auth context (peer_uri)
    assert (
        service_of_uris([spiffe_id_for("edge"), spiffe_id_for("keys")], "railguard.local") is None
    )
    assert service_of_uris([spiffe_id_for("edge")], "railguard.local") == "edge"
    assert service_of_uris([], "railguard.local") is None


def test_dev_certificates_carry_their_spiffe_id(pki: Path) -> None:
    for svc in ("auth", "workspaces", "keys", "credentials", "edge"):
        pem = (pki / f"{svc}.crt").read_bytes()
        assert service_of_certificate(pem, "railguard.local", "railguard") == svc


@pytest.mark.parametrize(
    "uri",
    [
        "spiffe://railguard.local/ns/railguard/sa/..",
        "spiffe://Railguard.local/ns/railguard/sa/edge",
        "spiffe://railguard.local/ns/railguard/sa/edge/extra",
        "spiffe://railguard.local/ns//sa/edge",
    ],
)
def test_malformed_spiffe_ids_do_not_parse(uri: str) -> None:
    assert parse_spiffe_id(uri) is None
