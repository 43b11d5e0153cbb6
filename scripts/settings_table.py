"""Write the README's configuration table from ``servicekit.catalog`` (``--check``: only compare).

python scripts/settings_table.py          # rewrite the block between the markers
python scripts/settings_table.py --check  # exit 1 when README.md differs from the catalog
"""

from __future__ import annotations

import sys
from pathlib import Path

from servicekit.catalog import render_table

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN = "<!-- settings-table: generated from libs/servicekit/catalog.py by scripts/settings_table.py -->"
END = "<!-- settings-table: end -->"


def rendered(text: str) -> str:
    """``text`` with the block between the markers replaced by the catalog's table."""
    head, found, rest = text.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise SystemExit(f"README.md lacks the markers {BEGIN!r} … {END!r}")
    return f"{head}{BEGIN}\n{render_table()}{END}{tail}"


def main(argv: list[str]) -> int:
    text = README.read_text()
    want = rendered(text)
    if "--check" in argv:
        if want != text:
            print("README.md's settings table is stale: run python scripts/settings_table.py")  # noqa: T201
            return 1
        return 0
    README.write_text(want)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
