"""The post-mortem's facts, read from the audit log and the stored rows; nothing invented."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from actions.durations import format_duration
from bot.comms import store as comms_store
from bot.comms.metrics import IncidentTimes, figures
from bot.comms.render import Moment, Text, Who
from bot.lifecycle import format_id
from bot.runs import data_facts
from bot.services import Services

TEMPLATE = "postmortem.md.j2"


def _first(events: list, kind: str):
    return next((e for e in events if e["kind"] == kind), None)


def _last(events: list, kind: str):
    return next((e for e in reversed(events) if e["kind"] == kind), None)


def _moment(value: datetime | None) -> Moment | None:
    return Moment(value) if value else None


def _duration(start: datetime | None, end: datetime | None) -> str | None:
    if start is None or end is None:
        return None
    return format_duration(max(0.0, (end - start).total_seconds()))


async def postmortem_context(conn: asyncpg.Connection, services: Services, incident) -> dict:
    """Everything the post-mortem template shows for `incident`."""
    events = await comms_store.events(conn, incident_id=incident["id"])
    runs = await comms_store.incident_runs(conn, incident_id=incident["id"])
    run = runs[-1] if runs else None
    steps = await comms_store.run_steps(conn, run_ids=[r["id"] for r in runs])
    checks = await comms_store.run_checks(conn, run_ids=[run["id"]] if run else [])
    notices = await comms_store.incident_notices(conn, incident_id=incident["id"])
    request, approve = _first(events, "request_approval"), _first(events, "approve")
    resolve = _last(events, "resolve")
    decided = next((e for e in events if e["kind"] in ("approve", "reject")), None)
    times = IncidentTimes(
        declared_at=incident["declared_at"],
        detected_at=incident["detected_at"],
        decided_at=decided["at"] if decided else None,
        run_ended_at=run["ended_at"] if run else None,
        run_state=run["state"] if run else None,
        verified=run["verification_passed"] if run else None,
        state=incident["state"],
    )
    numbers = figures(times)
    scenario = services.runbook.scenario(incident["scenario"]) if incident["scenario"] else None
    on_call = services.runbook.contacts.get("on_call")
    declared = _first(events, "declare")
    return {
        "date": incident["declared_at"].astimezone(UTC).strftime("%Y-%m-%d"),
        "incident": format_id(incident["id"]),
        "severity": incident["severity"].upper(),
        "scenario": Text(incident["scenario"] or ""),
        "scenario_title": Text(scenario.title if scenario else ""),
        "trigger": Text(scenario.trigger if scenario else ""),
        "summary": Text(incident["summary"] or ""),
        "declared_by": Who(incident["declared_by"]),
        "declared_at": Moment(declared["at"] if declared else incident["declared_at"]),
        "detected_at": _moment(incident["detected_at"]),
        "detection_delay": format_duration(numbers.to_detect)
        if numbers.to_detect is not None
        else None,
        "decided_at": _moment(request["at"] if request else None),
        "requested_by": Who(request["actor"]) if request else None,
        "decision_reason": _reason(request),
        "approver": Who(approve["actor"]) if approve else None,
        "approved_at": _moment(approve["at"] if approve else None),
        "resolved_at": _moment(resolve["at"] if resolve else None),
        "resolved_by": Who(resolve["actor"]) if resolve else None,
        "resolution_note": Text((resolve["detail"] or {}).get("note") or "" if resolve else ""),
        "on_call": Who(on_call) if on_call else None,
        "timeline": [
            {"at": Moment(e["at"]), "kind": e["kind"], "actor": Who(e["actor"])} for e in events
        ],
        "run": _run(run, checks),
        "time_to_restore": format_duration(numbers.to_restore)
        if numbers.to_restore is not None
        else None,
        "steps": [_step(s) for s in steps],
        "checks": [
            {
                "name": Text(c["name"]),
                "kind": c["kind"],
                "passed": c["passed"],
                "detail": Text(c["detail"] or ""),
            }
            for c in checks
        ],
        "notices": [Text("#" + n["channel"]) for n in notices],
        "next_attempt": incident["next_attempt"].isoformat() if incident["next_attempt"] else None,
        "data": await _data(conn, run),
    }


async def _data(conn: asyncpg.Connection, run) -> dict[str, Any]:
    """The stored comparison of the restored database with the kept failed one, as text."""
    comparison = await data_facts.comparison_of(conn, run_id=run["id"]) if run else None
    facts = data_facts.data_facts(comparison)
    return {
        "present": comparison is not None,
        "compared": facts["compared"],
        "error": Text(facts["error"] or ""),
        "kept": Text(facts.get("kept") or ""),
        "restored": Text(facts.get("restored") or ""),
        "headline": Text(facts.get("headline") or ""),
        "lines": [Text(line) for line in facts["lines"]],
    }


def _reason(request) -> str | None:
    if request is None:
        return None
    reason = (request["detail"] or {}).get("reason", "")
    if reason == "high_deadline":
        return "HIGH incident not resolved by its deadline"
    return f"declared {reason.upper()}" if reason in ("critical", "high") else "requested"


def _run(run, checks) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "state": run["state"],
        "started_at": _moment(run["started_at"]),
        "ended_at": _moment(run["ended_at"]),
        "verified": run["verification_passed"] is True,
        "checks_ran": bool(checks),
    }


def _step(step) -> dict[str, Any]:
    return {
        "name": Text(step["name"]),
        "status": step["status"].replace("_", " "),
        "attempt": step["attempt"],
        "started_at": Moment(step["started_at"]),
        "ended_at": _moment(step["ended_at"]),
        "duration": _duration(step["started_at"], step["ended_at"]),
        "exit_code": step["exit_code"],
        "message": Text(step["message"] or ""),
    }
