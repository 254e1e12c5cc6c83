"""Join and leave announcements: the text for a template and a join, with no Discord calls here.

Names are escaped for markdown and mentions; only the member may be mentioned (a guild setting),
never a role or everyone: the caller sends with `allowed_mentions` built by `allowed_for`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import discord

from app.tracking.invites import JoinFacts
from cogs import style
from cogs.text import HINT_TEXT, safe_name
from repositories.guild_settings import DEFAULT_JOIN_TEMPLATE, DEFAULT_LEAVE_TEMPLATE

SOURCE_TEXT = {
    "invite": "invite",
    "vanity": "vanity URL",
    "unknown": "unknown invite",
    "ambiguous": "one of several invites",
    "downtime": "joined while the bot was offline",
}
# Used instead of the guild's template while the guild keeps the default one.
DEFAULT_JOIN_BY_SOURCE = {
    "invite": DEFAULT_JOIN_TEMPLATE,
    "vanity": "{member} joined through the vanity URL ({code}).",
    "unknown": "{member} joined; the invite they used could not be determined.",
    "ambiguous": "{member} joined through one of these invites: {code}; not counted for anyone.",
    "downtime": "{member} joined while the bot was offline; invited by {inviter} (code {code}, "
                "{invites} invites).",
}
# The defaults that show the inviter's total, without it: a server whose members see only their
# own figures (`members_view_others` off, `app.wiring.privacy.announce_totals`).
DEFAULT_WITHOUT_TOTAL = {
    "invite": "{member} joined; invited by {inviter} ({source}, code {code})",
    "downtime": "{member} joined while the bot was offline; invited by {inviter} (code {code}).",
    "leave": "{member_name} left; they were invited by {inviter_name}",
}
DEFAULT_JOIN_HINTED = "{member} joined without an invite; {hint}."
DEFAULT_LEAVE_UNKNOWN = "{member_name} left."
TOTAL_NOT_SHOWN = "not shown"  # `{invites}` in a guild's own template when totals are not shown
LATE_PREFIX = "(late) "
# "{invites} invites" in a template (the defaults have it) reads "1 invite" / "2 invites".
INVITES_WITH_UNIT = re.compile(r"(?<!\{)\{invites\} invites\b")
NO_TIME = datetime.min.replace(tzinfo=UTC)


def account_age(facts: JoinFacts) -> str:
    if facts.account_created_at is None:
        return "unknown"
    return style.days((facts.joined_at - facts.account_created_at).days)


def values(facts: JoinFacts, invites: int | None, mention_member: bool) -> dict[str, Any]:
    """The placeholders' values; `invites` None: the inviter's total is not shown."""
    inviter = safe_name(facts.inviter_name) if facts.inviter_name else (
        "the vanity URL" if facts.source == "vanity" else "unknown")
    code = facts.code or (" or ".join(facts.candidates) if facts.candidates else "-")
    return {
        "member": f"<@{facts.member_id}>" if mention_member else safe_name(facts.member_name),
        "member_name": safe_name(facts.member_name),
        "inviter": inviter,
        "inviter_name": inviter,
        "code": discord.utils.escape_markdown(code),
        "invites": TOTAL_NOT_SHOWN if invites is None else invites,
        "invites_text": f"invites {TOTAL_NOT_SHOWN}" if invites is None else style.count(invites, "invite"),
        "source": source_text(facts),
        "account_age": account_age(facts),
    }


def source_text(facts: JoinFacts) -> str:
    text = SOURCE_TEXT.get(facts.source, facts.source)
    return f"{text} ({HINT_TEXT[facts.hint]})" if facts.hint in HINT_TEXT else text


def join_text(template: str, facts: JoinFacts, invites: int | None, mention_member: bool) -> str:
    """The join message; `invites` None: without the inviter's total."""
    if template == DEFAULT_JOIN_TEMPLATE:
        hinted = facts.hint in HINT_TEXT
        template = DEFAULT_JOIN_HINTED if hinted else DEFAULT_JOIN_BY_SOURCE.get(facts.source, template)
        if invites is None and not hinted:
            template = DEFAULT_WITHOUT_TOTAL.get(facts.source, template)
    fields = {**values(facts, invites, mention_member), "hint": HINT_TEXT.get(facts.hint, "")}
    text = with_plural(template).format_map(fields)
    return text if facts.live else LATE_PREFIX + text


def leave_text(template: str, facts: JoinFacts | None, member_id: int, member_name: str,
               invites: int | None) -> str:
    """The leave message; `invites` None: without the inviter's total."""
    if facts is None:
        facts = JoinFacts(0, member_id, member_name, "unknown", None, (), None, None, NO_TIME, None)
    if template == DEFAULT_LEAVE_TEMPLATE and facts.inviter_name is None:
        template = DEFAULT_LEAVE_UNKNOWN
    elif template == DEFAULT_LEAVE_TEMPLATE and invites is None:
        template = DEFAULT_WITHOUT_TOTAL["leave"]
    return with_plural(template).format_map(values(facts, invites, mention_member=False))


def with_plural(template: str) -> str:
    """The template with `{invites} invites` counted in words (`1 invite`, `2 invites`)."""
    return INVITES_WITH_UNIT.sub("{invites_text}", template)


def late_batch_text(facts: list[JoinFacts]) -> str:
    """One message for many joins found after a downtime."""
    lines = [f"{LATE_PREFIX}{len(facts)} members joined while the bot was offline:"]
    for item in facts[:20]:
        who = safe_name(item.inviter_name) if item.inviter_name else source_text(item)
        lines.append(f"- {safe_name(item.member_name)}: {who}")
    if len(facts) > 20:
        lines.append(f"... and {len(facts) - 20} more (see /invites who)")
    return "\n".join(lines)


def allowed_for(member_id: int | None) -> discord.AllowedMentions:
    """Only the member may be pinged (when the guild allows it); never roles, everyone or others."""
    users: list[discord.Object] | bool = [discord.Object(member_id)] if member_id else False
    return discord.AllowedMentions(everyone=False, roles=False, users=users, replied_user=False)
