"""A running step's clock, its last duration and the run's estimated finish. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.runs import clock as run_clock
from bot.runs import render as run_blocks
from bot.runs.clock import Estimate, estimate, next_change, shown_elapsed, step_identity
from tests.unit.slack.test_blocks import assert_valid

MOMENT = datetime.fromtimestamp(1_000_000_000, UTC)  # far from today, on purpose


def a_run(**overrides) -> dict:
    row = {
        "id": 7,
        "kind": "rollback",
        "scenario": "database",
        "total_steps": 3,
        "started_at": MOMENT - timedelta(seconds=100),
        "stop_requested_by": None,
    }
    return row | overrides


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, None), (4.9, None), (5, 5), (9.9, 5), (10, 10), (59.9, 55), (60, 60), (89, 60),
     (90, 90), (599, 570), (600, 600), (659, 600), (3599, 3540), (3600, 3600), (3899, 3600)],
)  # fmt: skip
def test_the_clock_shows_after_five_seconds_in_coarse_steps(seconds, shown):
    assert shown_elapsed(seconds) == shown


def test_the_shown_clock_changes_exactly_where_next_change_says_and_never_goes_back():
    seconds, changes, last = 0.0, 0, None
    while seconds < 7200:
        due = next_change(seconds)
        assert due > seconds
        assert shown_elapsed(due - 0.001) == shown_elapsed(seconds)  # nothing changes before
        assert shown_elapsed(due) != shown_elapsed(seconds)
        assert last is None or shown_elapsed(due) > last
        seconds, last, changes = due, shown_elapsed(due), changes + 1
    assert changes == 1 + 11 + 18 + 50 + 12  # after 5 s; to 1 min; to 10 min; to 1 h; to 2 h


def test_a_lower_threshold_shows_the_clock_sooner_on_the_same_steps():
    assert shown_elapsed(0.5, after=1) is None
    assert shown_elapsed(1.2, after=1) == 1
    assert next_change(1.2, after=1) == 5
    assert shown_elapsed(5.1, after=1) == 5


def test_a_step_is_the_same_step_by_kind_scenario_name_and_command_as_written():
    restore = "pg_restore {{ backup.dump }}"
    same = step_identity("rollback", "database", "Restore", restore)
    assert same == step_identity("rollback", "database", "Restore", restore)
    assert same != step_identity("rollback", "full", "Restore", restore)
    assert same != step_identity("rollback", "database", "Restore it", restore)
    assert same != step_identity("rollback", "database", "Restore", restore + " -j4")
    assert same != step_identity("backup", "database", "Restore", restore)


def test_the_estimate_adds_what_is_left_of_the_current_step_and_the_steps_after_it():
    found = estimate(MOMENT, current_elapsed=50, last_times=[290, 30, 100])
    assert found.left == 240 + 30 + 100
    assert found.finish == (MOMENT + timedelta(seconds=370)).replace(second=0) + timedelta(
        minutes=1
    )  # rounded up to the minute, so the text changes at most once a minute


def test_a_step_running_past_its_last_duration_adds_nothing_more_of_its_own():
    assert estimate(MOMENT, current_elapsed=500, last_times=[290, 30]).left == 30


def test_no_estimate_unless_every_step_still_to_run_has_a_last_duration():
    assert estimate(MOMENT, current_elapsed=0, last_times=[290, None, 100]) is None
    assert estimate(MOMENT, current_elapsed=0, last_times=[]) is None


def test_a_long_step_message_shows_how_long_it_has_run_and_took_last_time():
    text, blocks = run_blocks.step_message(
        index=1, total=3, name="Restore database", status="running",
        started_at=MOMENT, elapsed=190, last_time=290,
    )  # fmt: skip
    assert_valid(blocks)
    assert blocks[0]["text"]["text"] == (
        ":hourglass_flowing_sand: *Step 2/3: Restore database* — running 3m 10s (last time 4m 50s)"
    )
    assert text == "Step 2/3 running: Restore database"


def test_a_long_step_never_run_before_shows_only_how_long_it_has_run():
    _, blocks = run_blocks.step_message(
        index=0, total=3, name="Stop", status="running", started_at=MOMENT, elapsed=10
    )
    assert blocks[0]["text"]["text"] == ":hourglass_flowing_sand: *Step 1/3: Stop* — running 10s"


def test_a_step_just_started_shows_since_when_and_its_last_duration():
    _, blocks = run_blocks.step_message(
        index=0, total=3, name="Stop", status="running", started_at=MOMENT, last_time=4.2
    )
    assert blocks[0]["text"]["text"] == (
        ":hourglass_flowing_sand: *Step 1/3: Stop* — running since "
        f"{run_blocks.slack_time(MOMENT)} (last time 4.2s)"
    )


def test_the_progress_message_shows_the_step_clock_and_the_estimated_finish():
    finish = MOMENT + timedelta(minutes=5)
    _, blocks = run_blocks.progress(
        a_run(), done=1, current="Restore database", now=MOMENT, state="running",
        elapsed=190, last_time=290, estimate=Estimate(finish=finish, left=250),
    )  # fmt: skip
    assert_valid(blocks)
    clock = f"<!date^{int(finish.timestamp())}^{{time}}|{finish.strftime('%H:%M')} UTC>"
    assert blocks[0]["text"]["text"] == (
        "*Rollback `database`* · 1/3 steps done · step 2 of 3: *Restore database* — running "
        f"3m 10s (last time 4m 50s) · elapsed 1m 40s · estimated finish {clock} "
        "(about 4m left)\n▰▱▱"
    )


def test_the_progress_message_says_nothing_of_an_estimate_it_does_not_have():
    _, blocks = run_blocks.progress(
        a_run(), done=1, current="Restore database", now=MOMENT, state="running",
        elapsed=190, last_time=None, estimate=None,
    )  # fmt: skip
    assert blocks[0]["text"]["text"] == (
        "*Rollback `database`* · 1/3 steps done · step 2 of 3: *Restore database* — running "
        "3m 10s · elapsed 1m 40s\n▰▱▱"
    )


def test_the_progress_message_of_a_stopped_run_shows_no_estimate():
    finish = MOMENT + timedelta(minutes=5)
    _, blocks = run_blocks.progress(
        a_run(), done=1, current=None, now=MOMENT, state="waiting",
        estimate=Estimate(finish=finish, left=250),
    )  # fmt: skip
    assert "estimated" not in blocks[0]["text"]["text"]


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0, "under a minute left"), (59, "under a minute left"), (60, "about 1m left"),
     (250, "about 4m left"), (3600, "about 1h 00m left"), (3930, "about 1h 06m left")],
)  # fmt: skip
def test_time_left_is_said_to_the_nearest_minute(seconds, said):
    assert run_blocks.left_text(seconds) == said


def test_the_settings_default_is_the_clock_default():
    from bot.settings import load_settings

    assert load_settings({}, env_file=None).step_clock_after == run_clock.SHOW_AFTER
