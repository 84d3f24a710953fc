"""Which checklist items what happened ticks. Pure; the mapping is deliberately small:

- pre: an item named by the `checklist` key of a backup step that succeeded in the latest
  completed backup; "Rollback scripts tested" once a rehearsal passed.
- during: an item named by the `checklist` key of a rollback step that succeeded.
- post: an item named like a verification check that passed; the seed's "All services
  running", "Database accessible", "Build successful" and "Application responsive" when
  the whole verification passed; "Users notified" once the maintenance notice was posted;
  "Post-mortem scheduled" once the post-mortem was created; "No data lost" only when the
  stored comparison of the kept failed database with the restored one found no row that
  existed only in the failed state (never without a comparison).
- any item a person ticked with the button (kept in the audit log with who).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from actions.model import Step

PHASES = ("pre", "during", "post")
TITLES = {"pre": "Pre-Integration", "during": "During Rollback", "post": "Post-Rollback"}
REHEARSED = "Rollback scripts tested"
NOTIFIED = "Users notified"
POSTMORTEM = "Post-mortem scheduled"
NO_DATA_LOST = "No data lost"
VERIFIED = frozenset(
    {"All services running", "Database accessible", "Build successful", "Application responsive"}
)


@dataclass(frozen=True)
class Facts:
    """What happened, as far as the checklists care."""

    backup_items: frozenset[str] = frozenset()
    step_items: frozenset[str] = frozenset()
    rehearsed: bool = False
    verified: bool = False
    passed_checks: frozenset[str] = frozenset()  # lower-cased check names
    notified: bool = False
    postmortem: bool = False
    no_data_lost: bool = False  # a stored data comparison found nothing discarded
    manual: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (phase, item) -> user


@dataclass(frozen=True)
class Item:
    """One checklist line: `why` says what ticked it (None: not ticked), `by` who did."""

    phase: str
    index: int
    name: str
    why: str | None = None
    by: str | None = None


def items_ticked_by(steps: Iterable[Step], succeeded: Iterable[str]) -> frozenset[str]:
    """The `checklist` items of the steps (by name) that succeeded."""
    done = set(succeeded)
    return frozenset(s.checklist for s in steps if s.checklist and s.name in done)


def _automatic(phase: str, name: str, facts: Facts) -> str | None:
    if phase == "pre":
        if name in facts.backup_items:
            return "latest completed backup"
        if name == REHEARSED and facts.rehearsed:
            return "a rehearsal passed"
    elif phase == "during":
        if name in facts.step_items:
            return "its rollback step succeeded"
    elif phase == "post":
        if name.lower() in facts.passed_checks:
            return "its check passed"
        if name in VERIFIED and facts.verified:
            return "verification passed"
        if name == NOTIFIED and facts.notified:
            return "maintenance notice posted"
        if name == POSTMORTEM and facts.postmortem:
            return "post-mortem created"
        if name == NO_DATA_LOST and facts.no_data_lost:
            return "the restored database holds every row of the failed state"
    return None


def tick(
    checklists: Mapping[str, Iterable[str]], facts: Facts, phases: Iterable[str]
) -> list[Item]:
    """Every item of the requested phases, in order, with what ticked it."""
    result = []
    for phase in phases:
        for index, name in enumerate(checklists.get(phase, ())):
            why = _automatic(phase, name, facts)
            by = None if why else facts.manual.get((phase, name))
            result.append(Item(phase, index, name, why or ("ticked" if by else None), by))
    return result
