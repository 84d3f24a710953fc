"""`/rollback contacts`: the runbook's emergency contacts, by role."""

from __future__ import annotations

from bot.services import Services
from bot.slack import blocks

# The seed plan's roles, as it names them; other keys are shown as written.
ROLE_NAMES = {
    "database_admin": "Database Admin",
    "devops_lead": "DevOps Lead",
    "project_manager": "Project Manager",
    "on_call": "On-call Engineer",
}


def role_name(role: str) -> str:
    """`devops_lead` -> `DevOps Lead`; unknown roles are title-cased."""
    return ROLE_NAMES.get(role, role.replace("_", " ").title())


def contacts_text(services: Services) -> str:
    """Every role with its mention, as the plan's Emergency Contacts list."""
    contacts = services.runbook.contacts
    if not contacts:
        return 'The runbook has no `[contacts]`. Add roles such as `on_call = "U…"`.'
    lines = ["*Emergency contacts*"]
    lines += [
        f"• *{blocks.escape(role_name(role))}*: {blocks.mention(user)}"
        for role, user in contacts.items()
    ]
    return "\n".join(lines)
