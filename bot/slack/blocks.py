"""Domain objects -> Block Kit. Pure functions; user-typed text goes through `escape` only."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.lifecycle import ApprovalState, Severity, State, format_id
from bot.slack.ids import Action

Block = dict[str, Any]

_BROADCAST = re.compile(r"@(channel|here|everyone)", re.IGNORECASE)
_SEVERITY_ICON = {"critical": "🔴", "high": "🟠", "medium": "🟡", "low": "⚪"}
STATE_TEXT = {
    State.OPEN: "open",
    State.AWAITING_APPROVAL: "waiting for rollback approval",
    State.ROLLBACK_QUEUED: "rollback approved, queued",
    State.ROLLING_BACK: "rolling back",
    State.ROLLBACK_STOPPED: "rollback stopped, waiting for a decision",
    State.ROLLED_BACK: "rolled back",
    State.ROLLBACK_FAILED: "rollback did not complete",
    State.RESOLVED: "resolved",
    State.CANCELLED: "cancelled",
}


def escape(text: str, *, limit: int = 2000) -> str:
    """User text, made inert: no mentions, no links, no broadcast, bounded length."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub(lambda m: "@\u200b" + m.group(1), text)


class Unwritten(str):
    """A value a message shows before the database has written it: a mark, which the statement
    that writes the row replaces with the row's value (a new incident's id and time, so that
    its first message is owed in the statement that declares it). Marks start `MARK_START`,
    which no text around them may hold (user text is escaped, a runbook title made inert)."""

    def __new__(cls, mark: str) -> Unwritten:
        if not mark.startswith(MARK_START):
            raise ValueError(f"a mark starts {MARK_START!r}")
        return super().__new__(cls, mark)


MARK_START = "<rb:"
SCENARIO_LINE = 2000  # the incident root's scenario line, at most


def slack_time(moment: datetime | Unwritten) -> str:
    """A time every reader sees in their own time zone (UTC in the fallback)."""
    if isinstance(moment, Unwritten):
        return moment
    fallback = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def slack_time_sql(column: str) -> str:
    """`slack_time` as a SQL expression of a timestamptz `column`: for a time the database
    takes in the statement that writes it (a test holds the two to the same text)."""
    return (
        f"'<!date^' || floor(extract(epoch from {column}))::bigint"
        f" || '^{{date_short_pretty}} {{time}}|'"
        f" || to_char({column} at time zone 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC>'"
    )


def mention(user_id: str) -> str:
    """<@U…> for a user, <!subteam^S…> for a user group."""
    return f"<!subteam^{user_id}>" if user_id.startswith("S") else f"<@{user_id}>"


def mrkdwn(text: str, *, verbatim: bool = False) -> dict[str, Any]:
    """A mrkdwn text object; verbatim stops Slack auto-linking URLs and names."""
    obj: dict[str, Any] = {"type": "mrkdwn", "text": text}
    if verbatim:
        obj["verbatim"] = True
    return obj


def section(text: str, *, verbatim: bool = False) -> Block:
    """A section block of mrkdwn."""
    return {"type": "section", "text": mrkdwn(text[:3000], verbatim=verbatim)}


def context(text: str) -> Block:
    """A small grey line."""
    return {"type": "context", "elements": [mrkdwn(text[:3000])]}


def button(
    label: str,
    action: Action,
    value: str,
    *,
    style: str | None = None,
    confirm: Block | None = None,
) -> Block:
    """A button whose value names the record it acts on (never who may click it)."""
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action.value,
        "value": value,
    }
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def confirm_dialog(title: str, text: str, ok: str, *, danger: bool = False) -> Block:
    """A Block Kit confirm dialog for a destructive button."""
    dialog: Block = {
        "title": {"type": "plain_text", "text": title[:100]},
        "text": {"type": "mrkdwn", "text": text[:300]},
        "confirm": {"type": "plain_text", "text": ok[:30]},
        "deny": {"type": "plain_text", "text": "Not now"},
    }
    if danger:
        dialog["style"] = "danger"
    return dialog


def incident_title(incident: Mapping[str, Any]) -> str:
    """`🔴 RB-12 · CRITICAL` — the headline used everywhere."""
    severity = incident["severity"]
    return f"{_SEVERITY_ICON[severity]} *{format_id(incident['id'])}* · {severity.upper()}"


def incident_root(
    incident: Mapping[str, Any], scenario_title: str | None
) -> tuple[str, list[Block]]:
    """The declaration message that opens the incident's thread, kept current."""
    title = incident_title(incident)
    lines = [
        f"{title} · {STATE_TEXT[State(incident['state'])]}",
        f"Declared by {mention(incident['declared_by'])} {slack_time(incident['declared_at'])}",
    ]
    if incident["detected_at"]:
        lines.append(f"Detected {slack_time(incident['detected_at'])}")
    if incident["scenario"]:
        # The runbook's title is the one text here not escaped: it can't hold a mark, and its
        # line is bounded, so the marks' expansion keeps the section within Slack's 3,000.
        title = (scenario_title or "unknown").replace(MARK_START, "&lt;" + MARK_START[1:])
        line = f"Scenario: `{incident['scenario']}` — {title}"
        lines.append(line if len(line) <= SCENARIO_LINE else line[: SCENARIO_LINE - 1] + "…")
    blocks = [section("\n".join(lines))]
    if incident["summary"]:
        blocks.append(section("> " + escape(incident["summary"]), verbatim=True))
    blocks.append(context("This thread is the incident's log. `/rollback help` lists commands."))
    fallback = f"{format_id(incident['id'])} {incident['severity'].upper()}: " + escape(
        incident["summary"] or "incident declared", limit=150
    )
    return fallback, blocks


def approval_request(
    incident: Mapping[str, Any],
    approval: Mapping[str, Any],
    *,
    scenario_title: str,
    steps: Sequence[str],
    contacts: Iterable[str],
    approvers: Sequence[str],
    refusal: str | None = None,
    approved_by: Sequence[str] = (),
) -> tuple[str, list[Block]]:
    """The request a second person approves; `refusal` explains why it can't start yet.

    With `approvals_required` > 1 it shows the tally ("1 of 2 approvals") and who approved.
    """
    rid = format_id(incident["id"])
    step_lines = "\n".join(f"{n}. {escape(name)}" for n, name in enumerate(steps, 1))
    who = (
        "Approvers: " + ", ".join(mention(a) for a in approvers)
        if approvers
        else "Anyone who didn't ask for it may approve."
    )
    required = approval.get("approvals_required") or 1
    blocks = [
        section(f"*Rollback requested for {rid}:* `{approval['scenario']}` — {scenario_title}"),
        section(f"*Steps*\n{step_lines}"[:3000]),
        context(f"{who} Expires {slack_time(approval['expires_at'])}."),
    ]
    if required > 1 or approved_by:
        by = ", ".join(mention(u) for u in approved_by) or "nobody yet"
        blocks.append(
            section(f"*{len(approved_by)} of {required} approvals* (distinct people) — {by}")
        )
    mentions = " ".join(mention(c) for c in contacts)
    if mentions:
        blocks.insert(0, section(f"Paging {mentions}"))
    if refusal:
        blocks.append(section(f":no_entry: *This rollback can't start yet.* {refusal}"))
    value = str(approval["id"])
    # Approve names the restore point the request shows, so a click on the request as it was
    # before someone chose another backup is refused instead of approving one never seen.
    approve_value = f"{value}:{approval.get('backup_run_id') or 0}"
    approve_confirm = confirm_dialog(
        "Start the rollback?",
        f"This runs {len(steps)} steps of `{approval['scenario']}` on production.",
        "Approve and run",
        danger=True,
    )
    reject_confirm = confirm_dialog("Reject the rollback?", "The request will be closed.", "Reject")
    blocks.append(
        {
            "type": "actions",
            "block_id": f"approval-{value}",
            "elements": [
                button(
                    "Approve",
                    Action.APPROVE,
                    approve_value,
                    style="primary",
                    confirm=approve_confirm,
                ),
                button("Reject", Action.REJECT, value, style="danger", confirm=reject_confirm),
            ],
        }
    )
    return f"Rollback requested for {rid}: approve or reject in the thread", blocks


def approval_decided(
    incident: Mapping[str, Any],
    approval: Mapping[str, Any],
    *,
    scenario_title: str,
    approved_by: Sequence[str] = (),
) -> tuple[str, list[Block]]:
    """The request once decided: the buttons are replaced by who decided what, and when."""
    rid = format_id(incident["id"])
    state = ApprovalState(approval["state"])
    by = mention(approval["decided_by"] or "")
    if state is ApprovalState.APPROVED and len(approved_by) > 1:
        by = ", ".join(mention(u) for u in approved_by)
    outcome = {
        ApprovalState.APPROVED: f":white_check_mark: Approved by {by}",
        ApprovalState.REJECTED: f":x: Rejected by {by}",
        ApprovalState.EXPIRED: ":hourglass: Expired unused",
        ApprovalState.WITHDRAWN: ":heavy_minus_sign: Withdrawn: the incident was closed",
    }[state]
    when = approval["decided_at"] or approval["expires_at"]
    blocks = [
        section(f"*Rollback for {rid}:* `{approval['scenario']}` — {scenario_title}"),
        section(f"{outcome} {slack_time(when)}"),
    ]
    return f"Rollback for {rid}: {state.value}", blocks


def note(text: str) -> tuple[str, list[Block]]:
    """A line in the thread, written by the bot (any user text in it is already escaped)."""
    return text, [section(text)]


def incident_line(incident: Mapping[str, Any]) -> str:
    """One line summarising an incident, for status and history lists."""
    summary = escape(incident["summary"], limit=80) if incident["summary"] else "no summary"
    state = STATE_TEXT[State(incident["state"])]
    return f"{incident_title(incident)} · {state} · {summary}"


def severity_choice(severity: Severity) -> str:
    """The human label of a severity for menus."""
    return f"{_SEVERITY_ICON[severity.value]} {severity.value.capitalize()}"
