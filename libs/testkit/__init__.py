"""Test fixtures shared by every service's tests: PKI, real databases, in-process servers, a clock."""

from testkit.clock import FakeClock
from testkit.databases import POSTGRES_ENV, REDIS_ENV, fresh_database, postgres_admin_url, redis_url
from testkit.pki import make_pki
from testkit.servers import (
    channel_as,
    channel_without_client_cert,
    principal_metadata,
    running,
    test_settings,
)
from testkit.vault_transit_server import VaultTransitServer, running_vault_transit_server

__all__ = [
    "POSTGRES_ENV",
    "REDIS_ENV",
    "FakeClock",
    "VaultTransitServer",
    "channel_as",
    "channel_without_client_cert",
    "fresh_database",
    "make_pki",
    "postgres_admin_url",
    "principal_metadata",
    "redis_url",
    "running",
    "running_vault_transit_server",
    "test_settings",
]
