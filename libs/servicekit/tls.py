"""Mutual-TLS credentials for gRPC servers and clients, built from PEM files."""

from __future__ import annotations

from pathlib import Path

import grpc

__all__ = ["TlsFiles", "client_credentials", "server_credentials"]


class TlsFiles:
    """The three PEM files of one identity: its certificate, its key and the CA that signs peers."""

    def __init__(self, cert: Path, key: Path, ca: Path) -> None:
        self.cert, self.key, self.ca = cert, key, ca

    def __repr__(self) -> str:  # the key path is fine to show; its contents never are
        return f"TlsFiles(cert={self.cert!s}, ca={self.ca!s})"


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Server credentials that demand and verify a client certificate from the internal CA."""
    return grpc.ssl_server_credentials(
        [(files.key.read_bytes(), files.cert.read_bytes())],
        root_certificates=files.ca.read_bytes(),
        require_client_auth=True,
    )


def client_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """Channel credentials presenting this identity's certificate and trusting only the CA."""
    return grpc.ssl_channel_credentials(
        root_certificates=files.ca.read_bytes(),
        private_key=files.key.read_bytes(),
        certificate_chain=files.cert.read_bytes(),
    )
