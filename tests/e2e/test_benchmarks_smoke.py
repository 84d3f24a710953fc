"""`python -m benchmarks --quick` runs every benchmark end to end and prints its table.

Only that it runs is asserted, never what it measured: a slow machine must not fail tests.
"""

from __future__ import annotations

import asyncio
import os
import sys

from benchmarks.report import HEADER
from tests.e2e.harness import REPO

SECTIONS = (
    "Start-up",
    "Ack `status`",
    "Ack `declare`",
    "Ack `click`",
    "Bot RSS",
    "Web API calls per step",
    "HTTP 429s",
    "Run wall time",
    "Fixed overhead per step",
)


async def test_quick_benchmarks_print_one_table_with_a_result_on_every_row(pg_server_dsn):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks",
        "--quick",
        cwd=str(REPO),
        env=dict(os.environ, TEST_DATABASE_URL=pg_server_dsn),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=600)
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    table = [line for line in out.decode().splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in table]
    assert cells[0] == list(HEADER)
    rows = cells[2:]
    assert all(len(row) == len(HEADER) for row in rows)
    assert {row[-1] for row in rows} <= {"PASS", "MISS", "info"}
    for section in SECTIONS:
        assert any(row[0].startswith(section) for row in rows), section
    assert "quick size" in out.decode()
