"""Every Slack action_id, callback_id and block_id the bot uses, as enum members."""

from enum import StrEnum


class Action(StrEnum):
    """Buttons and menus; the value names the record they act on."""

    APPROVE = "rollback_approve"
    REJECT = "rollback_reject"
    RETRY = "run_retry"
    SKIP = "run_skip"
    ABORT = "run_abort"
    CANCEL_RUN = "run_cancel"
    RESUME = "run_resume"
    POST_NOTICE = "notice_post"
    TICK_CHECKLIST = "checklist_tick"
    POSTMORTEM_DONE = "postmortem_done"
    CHOOSE_BACKUP = "restore_point_choose"


class View(StrEnum):
    """Modal callback ids."""

    DECLARE = "declare_incident"


class Field(StrEnum):
    """Block ids (and action ids, the same) of the declare modal's inputs."""

    SEVERITY = "severity"
    SCENARIO = "scenario"
    SUMMARY = "summary"
    DETECTED = "detected"
