"""Member-supplied text (names, codes) made safe to show in messages and embeds."""

from __future__ import annotations

import re

import discord

_MENTION_SYNTAX = re.compile(r"<(?=[@#])")
# A join without an invite use (`hint` on the join): how the member probably came in.
HINT_TEXT = {
    "discovery": "probably via Server Discovery",
    "widget": "probably via the server widget",
    "discovery_or_widget": "probably via Server Discovery or the server widget",
}


def safe_name(text: str | None) -> str:
    """Markdown escaped, `@everyone`/`@here`/`@id` defused, and any `<@..>`, `<@&..>`, `<#..>`
    mention syntax broken with a zero-width space, so a name never formats, pings or links."""
    escaped = discord.utils.escape_mentions(discord.utils.escape_markdown(text or "?"))
    return _MENTION_SYNTAX.sub("<\u200b", escaped)
