"""`python -m benchmarks [--quick | --size real]`: run the benchmarks, print one table."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import machine, render
from benchmarks.sizes import FULL, QUICK, REAL
from benchmarks.suite import run_benchmarks


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; 0 when they ran (whatever they measured), 1 when one broke."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tiny size, for smoke tests")
    parser.add_argument(
        "--size",
        choices=("full", "quick", "real"),
        default="full",
        help="real: the long benchmarks at real size (a 1 GB shop database; about 10 min)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs and workdir")
    options = parser.parse_args(argv)
    size = QUICK if options.quick else {"full": FULL, "quick": QUICK, "real": REAL}[options.size]
    work = Path(tempfile.mkdtemp(prefix="rollback-bench-"))
    started = time.monotonic()
    try:
        rows = asyncio.run(run_benchmarks(size, work=work))
    except Exception as error:
        print(f"benchmarks: {type(error).__name__}: {error}\nlogs are in {work}", file=sys.stderr)
        return 1
    print(render(rows))
    print(f"\n{size.name} size, {time.monotonic() - started:.0f} s on {machine()}")
    if options.keep:
        print(f"logs and workdir: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
