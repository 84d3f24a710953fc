"""The declare modal: valid Block Kit, the channel rides along, submissions checked. Pure."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View as SlackView

from actions.runbook import load_runbook
from bot.incidents.modal import declare_modal, read_submission
from bot.lifecycle import Severity
from bot.slack.ids import Field, View
from bot.slack.parsing import MAX_TEXT, Command

NOW = datetime(2031, 11, 24, 12, 0, tzinfo=UTC)
RUNBOOK_PATH = Path(__file__).resolve().parents[3] / "runbook.toml"


@pytest.fixture(scope="module")
def runbook():
    return load_runbook(RUNBOOK_PATH)


def submitted(
    severity: str | None = "critical",
    scenario: str | None = "database",
    summary: str | None = "checkout is down",
    detected=None,
) -> dict:
    """A view as Slack sends it on submission (state.values[block_id][action_id])."""

    def selected(value):
        return {
            "type": "static_select",
            "selected_option": {"value": value} if value is not None else None,
        }

    values = {
        Field.SEVERITY.value: {Field.SEVERITY.value: selected(severity)},
        Field.SCENARIO.value: {Field.SCENARIO.value: selected(scenario)},
        Field.SUMMARY.value: {Field.SUMMARY.value: {"type": "plain_text_input", "value": summary}},
        Field.DETECTED.value: {
            Field.DETECTED.value: {"type": "datetimepicker", "selected_date_time": detected}
        },
    }
    return {"callback_id": View.DECLARE.value, "state": {"values": values}}


def read(view: dict):
    return read_submission(view, now=NOW)


# --- read_submission -------------------------------------------------------------------------


def test_valid_submission_is_read_without_errors():
    detected = int((NOW - timedelta(minutes=20)).timestamp())
    values, errors = read(
        submitted(summary="checkout\u202e is\x00 down\n  again", detected=detected)
    )
    assert errors == {}
    assert values == {
        "severity": Severity.CRITICAL,
        "scenario": "database",
        "summary": "checkout is down again",
        "detected_at": NOW - timedelta(minutes=20),
    }


def test_optional_fields_may_be_left_empty_for_low_severity():
    values, errors = read(submitted(severity="low", scenario=None, summary=None))
    assert errors == {}
    assert values == {
        "severity": Severity.LOW,
        "scenario": None,
        "summary": "",
        "detected_at": None,
    }


@pytest.mark.parametrize("severity", [None, "urgent", ""])
def test_missing_or_unknown_severity_is_an_error_on_the_severity_field(severity):
    values, errors = read(submitted(severity=severity))
    assert errors == {Field.SEVERITY: "Choose a severity."}
    assert values["severity"] is None


def test_empty_view_reports_a_missing_severity_and_does_not_crash():
    assert read({})[1] == {Field.SEVERITY: "Choose a severity."}


@pytest.mark.parametrize("severity", ["critical", "high"])
def test_critical_and_high_without_a_scenario_are_refused(severity):
    _, errors = read(submitted(severity=severity, scenario=None))
    assert set(errors) == {Field.SCENARIO}
    assert "scenario" in errors[Field.SCENARIO]


@pytest.mark.parametrize("severity", ["medium", "low"])
def test_medium_and_low_need_no_scenario(severity):
    assert read(submitted(severity=severity, scenario=None))[1] == {}


def test_future_detection_time_is_refused():
    future = int((NOW + timedelta(minutes=10)).timestamp())
    _, errors = read(submitted(detected=future))
    assert errors == {Field.DETECTED: "The detection time is in the future."}


def test_detection_time_within_a_minute_of_now_is_accepted():
    soon = int((NOW + timedelta(seconds=30)).timestamp())
    assert read(submitted(detected=soon))[1] == {}


@pytest.mark.parametrize("garbage", ["abc", "", "1e9", [1], {"t": 1}, 10**20, "12:30"])
def test_garbage_detection_time_is_an_error_not_a_crash(garbage):
    values, errors = read(submitted(detected=garbage))
    assert errors == {Field.DETECTED: "That is not a time."}
    assert values["detected_at"] is None


def test_over_long_summary_is_refused():
    _, errors = read(submitted(summary="x" * (MAX_TEXT + 1)))
    assert set(errors) == {Field.SUMMARY}
    assert str(MAX_TEXT) in errors[Field.SUMMARY]


def test_summary_at_the_limit_is_accepted():
    values, errors = read(submitted(summary="x" * MAX_TEXT))
    assert errors == {}
    assert len(values["summary"]) == MAX_TEXT


# --- declare_modal ---------------------------------------------------------------------------


def assert_valid_modal(modal: dict) -> None:
    SlackView(**modal).validate_json()
    assert len(modal["blocks"]) <= 100
    for block in modal["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()


def test_declare_modal_is_valid_and_carries_the_channel(runbook):
    modal = declare_modal(runbook, channel="C0INCIDENT")
    assert_valid_modal(modal)
    assert modal["callback_id"] == View.DECLARE.value
    assert json.loads(modal["private_metadata"]) == {"channel": "C0INCIDENT"}


def test_declare_modal_offers_every_severity_and_scenario(runbook):
    modal = declare_modal(runbook, channel="C1")
    by_id = {b["block_id"]: b["element"] for b in modal["blocks"]}
    assert [o["value"] for o in by_id[Field.SEVERITY]["options"]] == [s.value for s in Severity]
    assert [o["value"] for o in by_id[Field.SCENARIO]["options"]] == [
        s.key for s in runbook.scenarios
    ]


def test_declare_modal_fields_are_the_ones_read_submission_reads(runbook):
    modal = declare_modal(runbook, channel="C1")
    assert [(b["block_id"], b["element"]["action_id"]) for b in modal["blocks"]] == [
        (f.value, f.value) for f in (Field.SEVERITY, Field.SCENARIO, Field.SUMMARY, Field.DETECTED)
    ]


def test_declare_modal_prefills_severity_and_summary(runbook):
    preset = Command("declare", severity=Severity.HIGH, text="y" * MAX_TEXT)
    modal = declare_modal(runbook, channel="C1", preset=preset)
    assert_valid_modal(modal)
    by_id = {b["block_id"]: b["element"] for b in modal["blocks"]}
    assert by_id[Field.SEVERITY]["initial_option"]["value"] == "high"
    assert by_id[Field.SUMMARY]["initial_value"] == "y" * MAX_TEXT


def test_declare_modal_stays_valid_with_long_scenario_titles(runbook):
    long = [dataclasses.replace(s, title="T" * 300) for s in runbook.scenarios]
    modal = declare_modal(dataclasses.replace(runbook, scenarios=tuple(long)), channel="C1")
    assert_valid_modal(modal)
