"""Figures, targets and verdicts, and how they are printed and saved. Pure functions: no timing."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = ["Figure", "Target", "TargetKind", "Verdict", "format_table", "ratio", "write_json"]


class TargetKind(StrEnum):
    MIN_RATIO = "min_ratio"  # Railguard / baseline must be at least the threshold
    MAX_VALUE = "max_value"  # the Railguard value itself must be at most the threshold
    MAX_RATIO = "max_ratio"  # Railguard / baseline must be at most the threshold (costs)


class Verdict(StrEnum):
    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    BELOW = "BELOW"
    NOT_MEASURED = "not measured"
    NO_TARGET = "no target"  # measured and reported, but DESIGN sets no threshold for it
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    threshold: float
    unit: str = ""

    def describe(self) -> str:
        if self.kind is TargetKind.MIN_RATIO:
            return f">= {self.threshold:g}x"
        if self.kind is TargetKind.MAX_RATIO:
            return f"<= {self.threshold:g}x"
        return f"<= {self.threshold:g} {self.unit}".rstrip()


@dataclass(slots=True)
class Figure:
    """One row of the report: a Railguard value beside its baseline, measured in the same run."""

    name: str
    unit: str
    target: Target | None
    railguard: float | None = None
    baseline: float | None = None
    note: str = ""
    error: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return ratio(self.railguard, self.baseline)

    @property
    def verdict(self) -> Verdict:
        if self.error:
            return Verdict.ERROR
        if self.railguard is None:
            return Verdict.NOT_MEASURED
        if self.target is None:
            return Verdict.NO_TARGET
        if self.target.kind is TargetKind.MAX_VALUE:
            return Verdict.PASS if self.railguard <= self.target.threshold else Verdict.BELOW
        r = self.ratio
        if r is None:
            return Verdict.NOT_MEASURED
        if self.target.kind is TargetKind.MAX_RATIO:
            return Verdict.PASS if r <= self.target.threshold else Verdict.BELOW
        return Verdict.PASS if r >= self.target.threshold else Verdict.BELOW

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = (
            None
            if self.target is None
            else {
                "kind": self.target.kind.value,
                "threshold": self.target.threshold,
                "unit": self.target.unit,
            }
        )
        data["ratio"] = self.ratio
        data["verdict"] = self.verdict.value
        return data


def ratio(railguard: float | None, baseline: float | None) -> float | None:
    """Railguard / baseline, or None when either is missing or the baseline is not positive."""
    if railguard is None or baseline is None or baseline <= 0 or not math.isfinite(baseline):
        return None
    return railguard / baseline


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    text = f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{text} {unit}".rstrip()


def _ratio_text(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.2g}x"


_HEADERS = ("figure", "railguard", "baseline", "ratio", "target", "verdict")


def format_table(figures: list[Figure]) -> str:
    """A fixed-width text table, one row per figure, with notes and errors listed underneath."""
    rows = [
        (
            f.name,
            _number(f.railguard, f.unit),
            _number(f.baseline, f.unit),
            _ratio_text(f.ratio),
            "-" if f.target is None else f.target.describe(),
            f.verdict.value,
        )
        for f in figures
    ]
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(_HEADERS, *rows, strict=True)
    ]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    out = [line(_HEADERS), line(tuple("-" * w for w in widths)), *(line(r) for r in rows)]
    notes = [f"  {f.name}: {f.error or f.note}" for f in figures if f.error or f.note]
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(out)


def write_json(path: Path, figures: list[Figure], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**meta, "figures": [f.as_dict() for f in figures]}
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
