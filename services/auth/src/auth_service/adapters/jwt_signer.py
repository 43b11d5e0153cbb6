"""Ed25519 keys and EdDSA tokens (``typ: at+jwt`` or ``dep+jwt``) through PyJWT."""

from __future__ import annotations

from collections.abc import Mapping

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)


class Ed25519JwtSigner:
    """A ``TokenSigner``: makes key pairs and signs claims with a raw Ed25519 private key."""

    def generate(self) -> tuple[bytes, bytes]:
        """A new key pair as raw bytes: ``(public, private)``."""
        private = Ed25519PrivateKey.generate()
        public_raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        private_raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return public_raw, private_raw

    def sign(
        self, claims: Mapping[str, object], private_key: bytes, kid: str, typ: str = "at+jwt"
    ) -> str:
        """``typ`` is ``at+jwt`` for user access tokens, ``dep+jwt`` for deployment tokens."""
        key = Ed25519PrivateKey.from_private_bytes(private_key)
        return jwt.encode(dict(claims), key, algorithm="EdDSA", headers={"kid": kid, "typ": typ})
