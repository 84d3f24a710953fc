"""The `--size real` rows of the 1 GB rollback: each measurement beside its baseline."""

from __future__ import annotations

from benchmarks.report import Row, times

RATIO = 1.05
REPS = 2  # bot/bash pairs of each (real_size), means of this many runs


def _split(facts: dict[str, float]) -> str:
    parts = [f"before 1st step {facts['before']:.1f} s", f"steps {facts['steps']:.1f} s"]
    if facts.get("compare"):
        parts.append(f"data comparison {facts['compare']:.1f} s")
    if facts.get("checks"):
        parts.append(f"manifest check {facts['checks']:.1f} s")
    rest = facts["after"] - facts.get("compare", 0.0) - facts.get("checks", 0.0)
    parts.append(f"rest after steps {rest:.1f} s")
    return ", ".join(parts)


def rows(bash_backup, backup, bash_rollback, rollback, cat, sha, shop) -> list[Row]:
    mib = shop.facts["dump_bytes"] / 2**20
    allowance = 1.0 + sha
    click = rollback["click_to_first_step"]
    return [
        Row(
            "1 GB backup (`pg_dump`), bot claim → end (mean of 2)",
            f"{backup['total']:.1f} s",
            f"{bash_backup:.1f} s (bash)",
            times(backup["total"] / bash_backup),
            f"≤ {RATIO}×",
            backup["total"] / bash_backup <= RATIO,
        ),
        Row("… the bot's backup, split", _split(backup)),
        Row(
            "1 GB rollback (`database`: keep failed DB, restore), bot claim → end (mean of 2)",
            f"{rollback['total']:.1f} s",
            f"{bash_rollback:.1f} s (bash)",
            times(rollback["total"] / bash_rollback),
            f"≤ {RATIO}×",
            rollback["total"] / bash_rollback <= RATIO,
        ),
        Row("… the bot's rollback, split", _split(rollback)),
        Row(
            "… its steps alone (no comparison, no check)",
            f"{rollback['before'] + rollback['steps']:.1f} s",
            f"{bash_rollback:.1f} s (bash)",
            times((rollback["before"] + rollback["steps"]) / bash_rollback),
            f"≤ {RATIO}×",
            (rollback["before"] + rollback["steps"]) / bash_rollback <= RATIO,
        ),
        Row(
            "Approve click → first step starts, 1 GB",
            f"{click:.2f} s (slowest of {REPS})",
            f"cat {cat:.2f} s, sha256 {sha:.2f} s ({mib:.0f} MiB dump)",
            target=f"≤ {allowance:.2f} s (1 s + one sha256 read)",
            passed=click <= allowance,
        ),
        Row(
            "Approve click acknowledged (HTTP 200)",
            f"{rollback['approve_ack'] * 1000:.0f} ms",
            target="≤ 3 s (Slack)",
            passed=rollback["approve_ack"] <= 3.0,
        ),
    ]
