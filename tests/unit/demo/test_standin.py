"""The fake Slack refuses what Slack refuses, remembers what it was sent, and misbehaves on
request in ways slack_sdk's retry handlers recognise."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fake_slack import FakeSlack
from tests.slack_requests import (
    app_home_opened_event_body,
    block_actions_body,
    sign,
    slash_command_body,
    view_submission_body,
)

TOKEN = "xoxb-test-token"
SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*Rollback* requested"}}


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=fake.base_url)


async def _error_of(call) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


# -- refusing what Slack refuses ----------------------------------------------------------


async def test_post_message_without_channel_is_invalid_arguments(fake, client):
    error = await _error_of(client.api_call("chat.postMessage", json={"text": "hi"}))
    assert error.response["error"] == "invalid_arguments"
    assert (
        "[ERROR] missing required field: channel"
        in (error.response["response_metadata"]["messages"])
    )
    assert fake.calls_to("chat.postMessage")[0].failed


async def test_unknown_or_missing_token_is_refused(fake):
    stranger = AsyncWebClient(token="xoxb-someone-else", base_url=fake.base_url)
    error = await _error_of(stranger.chat_postMessage(channel="C1", text="hi"))
    assert error.response["error"] == "invalid_auth"
    assert fake.messages("C1") == []
    async with aiohttp.ClientSession() as session:
        reply = await session.post(fake.base_url + "auth.test", data={})
        assert await reply.json() == {"ok": False, "error": "not_authed"}


async def test_token_may_come_as_a_form_field(fake):
    async with aiohttp.ClientSession() as session:
        form = {"token": TOKEN, "channel": "C1", "text": "from a form"}
        reply = await session.post(fake.base_url + "chat.postMessage", data=form)
        assert (await reply.json())["ok"] is True
    assert fake.messages("C1")[0]["text"] == "from a form"


@pytest.mark.parametrize(
    ("method", "args", "missing"),
    [
        ("chat.delete", {"channel": "C1"}, "ts"),
        ("conversations.history", {}, "channel"),
        ("files.getUploadURLExternal", {"filename": "a.txt"}, "length"),
        ("views.update", {"view": {"type": "home", "blocks": [SECTION]}}, "view_id"),
    ],
)
async def test_required_arguments_follow_the_method_docs(client, method, args, missing):
    error = await _error_of(client.api_call(method, json=args))
    assert error.response["error"] == "invalid_arguments"
    assert missing in " ".join(error.response["response_metadata"]["messages"])


async def test_unknown_method_is_refused(client):
    error = await _error_of(client.api_call("chat.shout", json={"channel": "C1"}))
    assert error.response["error"] == "unknown_method"


@pytest.mark.parametrize(
    "blocks",
    [
        [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
        [{"type": "no_such_block"}],
        [{"type": "section"}],
        [SECTION] * 51,
    ],
    ids=["text-too-long", "unknown-type", "section-without-text", "too-many-blocks"],
)
async def test_invalid_blocks_are_refused(fake, client, blocks):
    error = await _error_of(client.chat_postMessage(channel="C1", text="t", blocks=blocks))
    assert error.response["error"] == "invalid_blocks"
    assert error.response["response_metadata"]["messages"]
    assert fake.messages("C1") == []


async def test_message_without_text_or_blocks_is_no_text(client):
    error = await _error_of(client.api_call("chat.postMessage", json={"channel": "C1"}))
    assert error.response["error"] == "no_text"


async def test_modal_without_title_is_refused(client):
    view = {"type": "modal", "blocks": [SECTION]}
    error = await _error_of(client.views_open(trigger_id="1.2.3", view=view))
    assert error.response["error"] == "invalid_arguments"
    assert any("title" in m for m in error.response["response_metadata"]["messages"])


async def test_missing_and_foreign_channels_are_refused(fake, client):
    fake.missing_channels.add("CGONE")
    fake.not_in_channels.add("CPRIVATE")
    gone = await _error_of(client.chat_postMessage(channel="CGONE", text="hi"))
    private = await _error_of(client.conversations_history(channel="CPRIVATE"))
    assert gone.response["error"] == "channel_not_found"
    assert private.response["error"] == "not_in_channel"


# -- recording and the channel model ------------------------------------------------------


async def test_form_encoded_json_fields_are_recorded_decoded(fake, client):
    form = {"channel": "C1", "text": "t", "blocks": json.dumps([SECTION])}
    await client.api_call("chat.postMessage", data=form)
    (call,) = fake.calls_to("chat.postMessage")
    assert call.args["blocks"] == [SECTION]
    assert call.token == TOKEN and call.ok and not call.failed


async def test_posts_get_unique_increasing_timestamps(client):
    first = await client.chat_postMessage(channel="C1", text="one")
    second = await client.chat_postMessage(channel="C2", text="two")
    assert abs(float(first["ts"]) - time.time()) < 60  # the moment of posting, like Slack's
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["text"] == "one"


async def test_channel_model_applies_updates_threads_and_deletes(fake, client):
    parent = (await client.chat_postMessage(channel="C1", text="rollback #7", blocks=[SECTION]))[
        "ts"
    ]
    await client.chat_postMessage(channel="C1", text="step 1 done", thread_ts=parent)
    await client.chat_postMessage(channel="C1", text="step 2 done", thread_ts=parent)
    doomed = (await client.chat_postMessage(channel="C1", text="oops"))["ts"]
    await client.chat_update(channel="C1", ts=parent, text="rollback #7: done")
    await client.chat_delete(channel="C1", ts=doomed)

    (message,) = fake.messages("C1")
    assert message["text"] == "rollback #7: done"
    assert message["blocks"] == [SECTION]  # chat.update without blocks keeps them
    assert [r["text"] for r in fake.thread("C1", parent)] == ["step 1 done", "step 2 done"]
    replies = await client.conversations_replies(channel="C1", ts=parent)
    assert [m["text"] for m in replies["messages"]][1:] == ["step 1 done", "step 2 done"]
    assert replies["messages"][0]["reply_count"] == 2


async def test_history_is_newest_first_with_metadata_only_on_request(client):
    metadata = {"event_type": "rollback_requested", "event_payload": {"incident": 7}}
    await client.chat_postMessage(channel="C1", text="first", metadata=metadata)
    await client.chat_postMessage(channel="C1", text="second")
    plain = await client.conversations_history(channel="C1")
    full = await client.conversations_history(channel="C1", include_all_metadata=True)
    assert [m["text"] for m in plain["messages"]] == ["second", "first"]
    assert "metadata" not in plain["messages"][1]
    assert full["messages"][1]["metadata"] == metadata


async def test_update_of_unknown_message_is_message_not_found(client):
    error = await _error_of(client.chat_update(channel="C1", ts="1.000001", text="x"))
    assert error.response["error"] == "message_not_found"


async def test_bot_cannot_edit_a_persons_message(fake, client):
    ts = fake.add_message("C1", "please roll back", user="UALICE")
    error = await _error_of(client.chat_update(channel="C1", ts=ts, text="x"))
    assert error.response["error"] == "cant_update_message"


async def test_usergroup_members_come_from_the_fake(fake, client):
    fake.usergroups["S0APPROVERS"] = ["UALICE", "UBOB"]
    answer = await client.usergroups_users_list(usergroup="S0APPROVERS")
    assert answer["users"] == ["UALICE", "UBOB"]
    error = await _error_of(client.usergroups_users_list(usergroup="S0NOBODY"))
    assert error.response["error"] == "no_such_subteam"


async def test_views_get_ids_and_can_be_updated(fake, client):
    modal = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Roll back"},
        "blocks": [SECTION],
    }
    opened = await client.views_open(trigger_id="1.2.3", view=modal)
    view_id = opened["view"]["id"]
    changed = modal | {"title": {"type": "plain_text", "text": "Rolling back"}}
    updated = await client.views_update(view_id=view_id, view=changed)
    assert updated["view"]["id"] == view_id
    assert fake.views[view_id]["title"]["text"] == "Rolling back"
    assert fake.calls_to("views.open")[0].args["view"] == modal


async def test_canvases_can_be_disabled_like_on_a_free_workspace(fake, client):
    created = await client.canvases_create(title="Postmortem")
    assert created["canvas_id"] in fake.canvases
    fake.canvases_enabled = False
    error = await _error_of(client.canvases_create(title="Postmortem"))
    assert error.response["error"] == "free_teams_cannot_create_standalone_canvases"


async def test_upload_flow_records_the_file_and_shares_it(fake, client):
    await client.files_upload_v2(
        channel="C1", content="step log", filename="run.log", initial_comment="the log"
    )
    (file,) = fake.files.values()
    assert (file.content, file.filename, file.channel_id) == (b"step log", "run.log", "C1")
    (message,) = fake.messages("C1")
    assert message["text"] == "the log" and message["files"][0]["id"] == file.id


# -- faults and retries -------------------------------------------------------------------


async def test_rate_limit_with_retry_after_is_honoured_by_slack_sdk(fake):
    fake.fail("chat.postMessage", retry_after=0)
    client = AsyncWebClient(
        token=TOKEN, base_url=fake.base_url, retry_handlers=[AsyncRateLimitErrorRetryHandler()]
    )
    answer = await client.chat_postMessage(channel="C1", text="hi")
    assert answer["ok"]
    attempts = fake.calls_to("chat.postMessage")
    assert [(c.status, c.failed) for c in attempts] == [(429, True), (200, False)]
    assert len(fake.messages("C1")) == 1


async def test_server_error_is_retried_by_slack_sdk(fake):
    fake.fail("chat.postMessage", status=500)
    client = AsyncWebClient(
        token=TOKEN, base_url=fake.base_url, retry_handlers=[AsyncServerErrorRetryHandler()]
    )
    assert (await client.chat_postMessage(channel="C1", text="hi"))["ok"]
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [500, 200]


async def test_error_fault_lasts_until_healed_when_times_is_none(fake, client):
    fake.fail("chat.update", error="ratelimited", times=None)
    ts = (await client.chat_postMessage(channel="C1", text="hi"))["ts"]
    for _ in range(3):
        error = await _error_of(client.chat_update(channel="C1", ts=ts, text="x"))
        assert error.response["error"] == "ratelimited"
    fake.heal()
    assert (await client.chat_update(channel="C1", ts=ts, text="x"))["ok"]


async def test_slow_answer_times_out_the_client_but_still_takes_effect(fake):
    fake.fail("chat.postMessage", delay=0.5)
    impatient = AsyncWebClient(token=TOKEN, base_url=fake.base_url, timeout=0.1)
    with pytest.raises(TimeoutError):
        await impatient.chat_postMessage(channel="C1", text="hi")
    assert len(fake.calls_to("chat.postMessage")) == 1  # recorded on arrival
    await fake.wait_for(lambda f: f.messages("C1"), timeout=2)


async def test_enforced_rate_limit_allows_a_short_burst_per_channel(fake, client):
    fake.enforce_rate_limits = True
    for text in ("1", "2", "3"):
        await client.chat_postMessage(channel="C1", text=text)
    error = await _error_of(client.chat_postMessage(channel="C1", text="4"))
    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "1"
    assert (await client.chat_postMessage(channel="C2", text="elsewhere"))["ok"]


async def test_wait_for_times_out_with_a_summary_of_calls(fake, client):
    await client.chat_postMessage(channel="C1", text="hi")
    with pytest.raises(AssertionError, match=r"chat\.postMessage ok"):
        await fake.wait_for(lambda f: f.calls_to("chat.update"), timeout=0.1)


# -- response URLs ------------------------------------------------------------------------


async def test_response_url_records_what_respond_sends(fake):
    url = fake.response_url()
    answer = await AsyncWebhookClient(url).send(text="Rollback queued", response_type="ephemeral")
    assert answer.status_code == 200
    (response,) = fake.responses_to(url)
    assert response.body == {"text": "Rollback queued", "response_type": "ephemeral"}


async def test_response_url_bound_to_a_message_replaces_it(fake, client):
    ts = (await client.chat_postMessage(channel="C1", text="Approve?"))["ts"]
    url = fake.response_url(channel="C1", message_ts=ts)
    await AsyncWebhookClient(url).send(text="Approved by <@UALICE>", replace_original=True)
    assert [m["text"] for m in fake.messages("C1")] == ["Approved by <@UALICE>"]


async def test_response_url_refuses_invalid_blocks_and_unknown_urls(fake):
    bad = await AsyncWebhookClient(fake.response_url()).send(blocks=[{"type": "bogus"}])
    unknown = await AsyncWebhookClient(fake.root_url + "/response/nope").send(text="hi")
    assert (bad.status_code, bad.body) == (400, "invalid_blocks")
    assert unknown.status_code == 404


# -- signed requests ----------------------------------------------------------------------


def test_signature_helper_round_trips_through_slack_sdk():
    body = slash_command_body("start INC-7", user_id="UA", channel_id="C1", response_url="u")
    headers = sign(body, "s3cret")
    assert SignatureVerifier("s3cret").is_valid_request(body, headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(body.decode())["text"] == ["start INC-7"]
    event = app_home_opened_event_body("UALICE")
    stale = sign(event, "s3cret", timestamp=1_600_000_000)
    assert stale["Content-Type"] == "application/json"
    assert not SignatureVerifier("s3cret").is_valid_request(event, stale)


def test_interactivity_bodies_carry_what_bolt_reads():
    click = block_actions_body(
        user_id="UALICE",
        action_id="approve",
        value="7",
        channel_id="C1",
        message_ts="1700000000.000100",
        response_url="http://x/response/1",
        message_blocks=[SECTION],
    )
    payload = json.loads(parse_qs(click.decode())["payload"][0])
    assert (payload["user"]["id"], payload["channel"]["id"]) == ("UALICE", "C1")
    assert payload["actions"][0].items() >= {"action_id": "approve", "value": "7"}.items()
    assert payload["message"]["blocks"] == [SECTION]
    submit = view_submission_body(
        user_id="UALICE",
        callback_id="rollback_modal",
        values={"reason": {"reason_input": "bad deploy"}},
        private_metadata="7",
    )
    view = json.loads(parse_qs(submit.decode())["payload"][0])["view"]
    assert view["state"]["values"]["reason"]["reason_input"]["value"] == "bad deploy"
