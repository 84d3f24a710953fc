"""Button payloads: the actor is always user.id, the value only ever a record id. Pure."""

from __future__ import annotations

import pytest

from bot.incidents.handlers import clicked
from bot.services import Refusal
from bot.slack.ids import Action


def payload(value="42", user: object = "UCLICKER1", **extra) -> dict:
    body = {
        "type": "block_actions",
        "user": {"id": user, "username": "clicker", "team_id": "T1"},
        "actions": [{"action_id": Action.APPROVE.value, "value": value, "type": "button"}],
    }
    body.update(extra)
    return body


def test_clicked_returns_the_payload_user_and_the_record_id():
    assert clicked(payload()) == ("UCLICKER1", 42, None)


def test_clicked_takes_the_actor_from_user_id_only():
    body = payload(
        value="7",
        user_id="UFORGED01",
        message={"user": "UBOTUSER1", "text": "<@UDECLARE1>"},
        container={"type": "message", "user": "UOTHER001"},
    )
    body["actions"][0]["user"] = "UACTION01"
    assert clicked(body) == ("UCLICKER1", 7, None)


def test_largest_allowed_record_id_is_accepted():
    assert clicked(payload(value="9" * 12)) == ("UCLICKER1", 999_999_999_999, None)


def test_approve_names_the_restore_point_the_request_showed():
    assert clicked(payload(value="42:7")) == ("UCLICKER1", 42, 7)
    assert clicked(payload(value="42:0")) == ("UCLICKER1", 42, 0)  # the request showed none


@pytest.mark.parametrize(
    "value",
    [
        "1; drop",
        "-1",
        "+1",
        "U123",
        "1.0",
        "0x10",
        "",
        " 1",
        "1 2",
        "9" * 13,
        "9" * 40,
        "RB-12",
        "${jndi:x}",
        "1:",
        ":1",
        "1:2:3",
        "1:-2",
        "1:" + "9" * 13,
    ],
)
def test_forged_or_non_numeric_values_are_refused(value):
    with pytest.raises(Refusal, match="malformed; nothing changed"):
        clicked(payload(value=value))


@pytest.mark.parametrize(
    "body",
    [
        payload(actions=None),
        payload(actions=[]),
        payload(actions=[{"action_id": Action.APPROVE.value}]),
        {"actions": [{"value": "42"}]},
        payload(user=None),
        payload(user=""),
        {**payload(), "user": {}},
        {**payload(), "user": None},
        {},
    ],
    ids=[
        "actions-null",
        "actions-empty",
        "no-value",
        "no-user",
        "user-id-null",
        "user-id-empty",
        "user-empty",
        "user-null",
        "empty-body",
    ],
)
def test_missing_actions_or_user_are_refused(body):
    with pytest.raises(Refusal):
        clicked(body)


def test_user_name_or_top_level_user_id_cannot_stand_in_for_user_id():
    body = {"user_id": "UFORGED01", "user": {"name": "boss"}, "actions": [{"value": "1"}]}
    with pytest.raises(Refusal):
        clicked(body)
