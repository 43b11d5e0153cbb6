"""Without OTEL_EXPORTER_OTLP_ENDPOINT a process never loads OpenTelemetry (no cost, no exporter)."""

from __future__ import annotations

import os
import subprocess
import sys

from servicekit.settings import load_settings

PROBE = """
import sys
import servicekit.runtime, servicekit.clients, servicekit.db, servicekit.server
import edge_service.app, edge_service.__main__
from servicekit.interceptors import default_interceptors
from servicekit.tracing import configure_tracing
from servicekit.settings import load_settings
assert configure_tracing(load_settings("edge", {})) is None
default_interceptors("d", {})
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""


def test_no_opentelemetry_module_is_loaded_when_tracing_is_off() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_endpoint_is_read_into_settings() -> None:
    settings = load_settings("auth", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"})
    assert settings.otel_endpoint == "http://127.0.0.1:4317"
    assert load_settings("auth", {}).otel_endpoint == ""
