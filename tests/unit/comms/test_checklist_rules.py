"""Which events tick which checklist items; the rest wait for a person."""

from __future__ import annotations

from actions.model import Step
from bot.comms.checklist_rules import Facts, items_ticked_by, tick

LISTS = {
    "pre": ["Database backup completed", "Code backup in git", "Rollback scripts tested"],
    "during": ["Services stopped", "Database restored"],
    "post": ["All services running", "Build successful", "Users notified", "Post-mortem scheduled"],
}


def ticked(items) -> dict[str, str | None]:
    return {item.name: item.why for item in items}


def test_backup_and_rollback_steps_tick_the_items_they_name_when_they_succeeded():
    backup = [
        Step("Dump", "x", checklist="Database backup completed"),
        Step("Branch", "x", checklist="Code backup in git"),
    ]
    assert items_ticked_by(backup, ["Dump"]) == {"Database backup completed"}
    facts = Facts(
        backup_items=frozenset({"Database backup completed"}),
        step_items=frozenset({"Database restored"}),
    )
    result = ticked(tick(LISTS, facts, ["pre", "during"]))
    assert result["Database backup completed"] == "latest completed backup"
    assert result["Code backup in git"] is None
    assert result["Database restored"] == "its rollback step succeeded"
    assert result["Services stopped"] is None


def test_rehearsal_verification_notice_and_postmortem_tick_their_items():
    facts = Facts(rehearsed=True, verified=True, notified=True, postmortem=True)
    result = ticked(tick(LISTS, facts, ["pre", "post"]))
    assert result["Rollback scripts tested"] == "a rehearsal passed"
    assert result["All services running"] == "verification passed"
    assert result["Users notified"] == "maintenance notice posted"
    assert result["Post-mortem scheduled"] == "post-mortem created"


def test_nothing_happened_means_nothing_is_ticked_except_by_hand():
    facts = Facts(manual={("post", "Build successful"): "UTICKER01"})
    items = tick(LISTS, facts, ["post"])
    assert [(i.name, i.by) for i in items if i.why] == [("Build successful", "UTICKER01")]
    assert all(i.why is None for i in tick(LISTS, Facts(), ["pre", "during"]))


def test_a_post_item_named_like_a_passed_check_is_ticked_by_it():
    facts = Facts(passed_checks=frozenset({"build successful"}), verified=False)
    result = ticked(tick(LISTS, facts, ["post"]))
    assert result["Build successful"] == "its check passed"
    assert result["All services running"] is None
