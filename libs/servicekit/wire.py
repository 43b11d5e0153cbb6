"""Proto ↔ primitives at the servicer boundary: resource names, timestamps and field masks."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, TypeVar

from google.protobuf import field_mask_pb2, timestamp_pb2

from servicekit.errors import InvalidArgument

__all__ = ["enum_from", "event_time", "mask_paths", "parse_name", "timestamp", "to_datetime"]

_SEGMENT = r"([A-Za-z0-9_-]{1,64})"
E = TypeVar("E")


@lru_cache(maxsize=64)
def _compile(pattern: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    keys = tuple(re.findall(r"\{(\w+)\}", pattern))
    regex = re.escape(pattern)
    for key in keys:
        regex = regex.replace(re.escape("{" + key + "}"), _SEGMENT)
    return re.compile(f"^{regex}$"), keys


def parse_name(pattern: str, value: str, field: str = "name") -> dict[str, str]:
    """Parse ``workspaces/w1/members/u1`` against ``workspaces/{workspace}/members/{member}``."""
    regex, keys = _compile(pattern)
    match = regex.match(value)
    if not match:
        raise InvalidArgument.field(field, f"must look like {pattern}", reason="INVALID_NAME")
    return dict(zip(keys, match.groups(), strict=True))


def timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def to_datetime(value: timestamp_pb2.Timestamp) -> dt.datetime:
    return value.ToDatetime(tzinfo=dt.UTC)


def mask_paths(
    mask: field_mask_pb2.FieldMask, allowed: frozenset[str], field: str = "update_mask"
) -> list[str]:
    """The mask's paths, each checked against ``allowed``; an empty mask is refused (explicit beats implicit)."""
    paths = list(mask.paths)
    if not paths:
        raise InvalidArgument.field(
            field, "must name at least one field", reason="INVALID_UPDATE_MASK"
        )
    for path in paths:
        if path not in allowed:
            raise InvalidArgument.field(
                field, f"cannot update {path!r}", reason="INVALID_UPDATE_MASK"
            )
    return paths


# --- relayed events (audit, lifecycle): a malformed message is a ValueError, never a default ---


def enum_from(table: Mapping[Any, E], value: int, field: str) -> E:
    """The domain value of an enum field; ValueError when it is unset or unknown."""
    decoded = table.get(value)
    if decoded is None:
        raise ValueError(f"{field} is not set")
    return decoded


def event_time(msg: Any) -> dt.datetime:
    """An event message's ``event_time`` as an aware UTC datetime; ValueError when unset."""
    if not msg.HasField("event_time"):
        raise ValueError("event_time is not set")
    return to_datetime(msg.event_time)
