"""Input constraints the edge enforces and the OpenAPI document states, written once.

Each constant is used by the code that checks it (the gateway, the services' pagination) and by
``openapi``, so the document cannot promise something the edge does not do.
"""

from __future__ import annotations

import re

from servicekit.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "ID_SEGMENT",
    "ID_SEGMENT_PATTERN",
    "MAX_PAGE_SIZE",
    "REQUEST_ID",
    "REQUEST_ID_PATTERN",
]

# one segment of a resource name (``workspaces/{segment}/apiKeys/{segment}``), checked on every
# path variable before anything else happens
ID_SEGMENT_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ID_SEGMENT = re.compile(ID_SEGMENT_PATTERN)

# a caller's X-Request-Id is kept end to end only when it has this shape; otherwise one is made
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
