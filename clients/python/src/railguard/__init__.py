"""Railguard's Python SDK: ``Client`` (sync), ``AsyncClient`` (asyncio), typed errors, verifiers.

    from railguard import Client
    with Client("https://localhost:8443", verify="ca.crt") as rg:
        rg.login("ada@example.com", "correct horse battery staple")
        ws = rg.workspaces.create("Acme")

The ``railguard`` name is shared with the generated gRPC contracts (``railguard.auth.v1`` …): the
package path is extended so both import side by side, and the exports below load lazily so that
importing a contract module never imports the HTTP client.
"""

from __future__ import annotations

from pkgutil import extend_path
from typing import TYPE_CHECKING, Any

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from railguard._core import RetryPolicy
    from railguard.aio import AsyncClient
    from railguard.client import Client
    from railguard.errors import MfaRequired, RailguardError
    from railguard.session import Tokens

__all__ = [
    "AsyncClient",
    "Client",
    "MfaRequired",
    "RailguardError",
    "RetryPolicy",
    "Tokens",
    "__version__",
]

_LAZY = {
    "AsyncClient": "railguard.aio",
    "Client": "railguard.client",
    "MfaRequired": "railguard.errors",
    "RailguardError": "railguard.errors",
    "RetryPolicy": "railguard._core",
    "Tokens": "railguard.session",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'railguard' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
