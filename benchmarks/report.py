"""The results table: measured value, baseline, ratio, target, and PASS / MISS."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

HEADER = ("Benchmark", "Measured", "Baseline", "Ratio", "Target", "Result")


@dataclass(frozen=True)
class Row:
    """One line of the table; `passed` None means there is no target to meet."""

    metric: str
    measured: str
    baseline: str = "—"
    ratio: str = "—"
    target: str = "—"
    passed: bool | None = None

    @property
    def result(self) -> str:
        """PASS, MISS, or info."""
        return "info" if self.passed is None else "PASS" if self.passed else "MISS"

    def cells(self) -> tuple[str, ...]:
        """The row as the table's columns."""
        return (self.metric, self.measured, self.baseline, self.ratio, self.target, self.result)


def ms(seconds: float) -> str:
    """Seconds as milliseconds, for people."""
    return f"{seconds * 1000:.1f} ms"


def times(ratio: float) -> str:
    """A ratio such as 1.07×."""
    return f"{ratio:.2f}×"


def render(rows: list[Row]) -> str:
    """A Markdown table, aligned so it reads in a terminal too."""
    lines = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]

    def fmt(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(HEADER), rule, *(fmt(r.cells()) for r in rows)])


def machine() -> str:
    """The machine the numbers came from: CPUs, memory, Python."""
    cpus = os.cpu_count()
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        model = f" ({names[0].split(':', 1)[1].strip()})" if names else ""
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kib = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])
        memory = f", {total_kib / 1024 / 1024:.1f} GiB RAM"
    return (
        f"{cpus} CPUs{model}{memory}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )
