"""The bundled list of common and breached passwords (``data/common-passwords.txt``)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from importlib import resources

from auth_service.domain import fold

RESOURCE = "common-passwords.txt"


class CommonPasswords:
    """A :class:`~auth_service.domain.Blocklist` held as one newline-delimited UTF-8 blob.

    A frozenset of the ~16,000 entries cost the auth process about 2.8 MB of resident memory (a
    str object and a hash slot each, and the pymalloc pages they left behind); the blob is about
    240 kB. A lookup is a substring search for a newline, the candidate and a newline (some
    50 µs), made only when a password is set, next to an argon2 hash. No entry contains a
    newline, so a match is always one whole entry.
    """

    __slots__ = ("_blob", "_count")

    def __init__(self, entries: Iterable[str]) -> None:
        blob, count = io.BytesIO(), 0
        blob.write(b"\n")
        for entry in entries:  # one at a time: no list or set of 16,000 strings, even briefly
            if entry and "\n" not in entry:
                blob.write(entry.encode("utf-8", "surrogatepass") + b"\n")
                count += 1
        self._blob, self._count = blob.getvalue(), count

    def __contains__(self, candidate: object) -> bool:
        if not isinstance(candidate, str) or not candidate or "\n" in candidate:
            return False
        return f"\n{candidate}\n".encode("utf-8", "surrogatepass") in self._blob

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        return iter(self._blob.decode("utf-8", "surrogatepass").split("\n")[1:-1])


def load_common_passwords() -> CommonPasswords:
    """Every entry, case-folded; ``#`` lines are provenance comments."""
    text = resources.files("auth_service.data").joinpath(RESOURCE).read_text(encoding="utf-8")
    lines = (line.rstrip("\n") for line in io.StringIO(text, newline=None))
    return CommonPasswords(fold(line) for line in lines if line and not line.startswith("#"))
