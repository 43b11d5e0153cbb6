"""Run the whole suite locally as separate processes: ``make run`` and the end-to-end tests.

Each service runs as its own ``python -m <name>_service`` process with its own database, and
the launcher waits on real health checks (gRPC health over mTLS, the edge's ``/readyz``).
"""

from devstack.ports import free_port
from devstack.stack import MALLOC_ENV, SERVICES, Stack, StackPorts, stop_process

__all__ = ["MALLOC_ENV", "SERVICES", "Stack", "StackPorts", "free_port", "stop_process"]
