"""How much each benchmark does: the full size, and a tiny one for smoke tests (`--quick`)."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Size:
    """Request counts, rounds and step counts of one benchmark run."""

    name: str
    rounds: int  # interleaved rounds of ack batches (bot, bare app, bare app, bot, …)
    batch: int  # requests of one kind per batch, `concurrency` in flight
    concurrency: int
    burst_rounds: int  # rounds at `burst_concurrency`
    burst_batch: int
    burst_concurrency: int
    mixed_requests: int  # the bot's RSS is read after at least this many requests
    memory_runs: int  # runs after which RSS is read; growth compared between half and all
    fast_steps: int  # steps of the run whose Slack calls are counted
    sleep_steps: int  # `sleep 1` steps, run by the bot and by bash
    true_steps: int  # `true` steps, for the fixed per-step overhead
    overhead_reps: int  # bot/bash pairs per scenario, alternating which goes first


FULL = Size(
    name="full",
    rounds=6,
    batch=100,
    concurrency=20,
    burst_rounds=2,
    burst_batch=200,
    burst_concurrency=100,
    mixed_requests=2000,
    memory_runs=10,
    fast_steps=20,
    sleep_steps=5,
    true_steps=50,
    overhead_reps=2,
)
QUICK = Size(
    name="quick",
    rounds=1,
    batch=20,
    concurrency=20,
    burst_rounds=1,
    burst_batch=100,
    burst_concurrency=100,
    mixed_requests=200,
    memory_runs=2,
    fast_steps=4,
    sleep_steps=1,
    true_steps=5,
    overhead_reps=1,
)
REAL = replace(FULL, name="real")  # `--size real`: suite.REAL_SECTIONS (a 1 GB shop, …)
