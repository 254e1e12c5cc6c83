"""Discord's size limits for a message, and fitting a reply into them (Discord answers 400 past them).

Every reply the cogs build goes through `fit_reply` (or `fit_embed` / `fit_content`) right before
it is sent: text past a limit is cut with an ellipsis, fields past 25 or past the 6,000
characters of a message's embeds are dropped with an "and N more" line. `more_lines` builds a
field value or description from lines the same way, so a long list says how much it left out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord

log = logging.getLogger(__name__)

CONTENT = 2000
EMBEDS = 10
TITLE = 256
DESCRIPTION = 4096
FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
AUTHOR = 256
TOTAL = 6000  # title, description, field names and values, footer and author of all embeds
ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def more_lines(lines: Sequence[str], limit: int = FIELD_VALUE, *, what: str = "more") -> str:
    """The lines that fit in `limit` characters, then "... and N more" for the rest."""
    out: list[str] = []
    for index, line in enumerate(lines):
        rest = len(lines) - index
        tail = f"... and {rest - 1} {what}" if rest > 1 else ""
        candidate = "\n".join([*out, clip(line, limit)])
        if len(candidate) + (len(tail) + 1 if tail else 0) > limit:
            out.append(f"... and {rest} {what}")
            return clip("\n".join(out), limit)
        out.append(clip(line, limit))
    return "\n".join(out)


def embed_size(embed: discord.Embed) -> int:
    fields = sum(len(f.name or "") + len(f.value or "") for f in embed.fields)
    return (len(embed.title or "") + len(embed.description or "") + fields
            + len(embed.footer.text or "") + len(embed.author.name or ""))


def fit_embed(embed: discord.Embed, budget: int = TOTAL) -> discord.Embed:
    """`embed` within every per-embed limit and `budget` characters in all (changed in place)."""
    if embed.title:
        embed.title = clip(embed.title, TITLE)
    if embed.description:
        embed.description = clip(embed.description, DESCRIPTION)
    if embed.footer.text:
        embed.set_footer(text=clip(embed.footer.text, FOOTER), icon_url=embed.footer.icon_url)
    if embed.author.name:
        embed.set_author(name=clip(embed.author.name, AUTHOR), url=embed.author.url,
                         icon_url=embed.author.icon_url)
    fields = [(clip(f.name or "-", FIELD_NAME), clip(f.value or "-", FIELD_VALUE), bool(f.inline))
              for f in embed.fields]
    kept = fields[:FIELDS] if len(fields) <= FIELDS else fields[: FIELDS - 1]  # room for "and N more"
    while kept and _size(embed, kept, fields) > budget:
        kept.pop()
    embed.clear_fields()
    for name, value, inline in kept:
        embed.add_field(name=name, value=value, inline=inline)
    if len(kept) < len(fields):
        log.info("reply trimmed: %d of %d fields shown", len(kept), len(fields))
        embed.add_field(name="...", value=f"and {len(fields) - len(kept)} more", inline=False)
    _shorten_texts(embed, budget)
    return embed


def _shorten_texts(embed: discord.Embed, budget: int) -> None:
    """Still over `budget` without fields to drop: cut the description, footer, then the title."""
    over = embed_size(embed) - budget
    if over > 0 and embed.description:
        embed.description = clip(embed.description, max(1, len(embed.description) - over))
    over = embed_size(embed) - budget
    if over > 0 and embed.footer.text:
        embed.set_footer(text=clip(embed.footer.text, max(1, len(embed.footer.text) - over)))
    over = embed_size(embed) - budget
    if over > 0 and embed.title:
        embed.title = clip(embed.title, max(1, len(embed.title) - over))


def _size(embed: discord.Embed, kept: list[tuple[str, str, bool]], fields: list[Any]) -> int:
    note = len("...") + len(f"and {len(fields) - len(kept)} more") if len(kept) < len(fields) else 0
    head = (len(embed.title or "") + len(embed.description or "") + len(embed.footer.text or "")
            + len(embed.author.name or ""))
    return head + sum(len(n) + len(v) for n, v, _ in kept) + note


def fit_content(text: str | None) -> str | None:
    return clip(text, CONTENT) if text else text


def fit_reply(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of a send/edit with content and embeds within Discord's limits."""
    if kwargs.get("content"):
        kwargs["content"] = fit_content(kwargs["content"])
    embeds = ([kwargs["embed"]] if kwargs.get("embed") is not None else []) + list(kwargs.get("embeds") or [])
    if len(embeds) > EMBEDS:
        log.info("reply trimmed: %d of %d embeds sent", EMBEDS, len(embeds))
        embeds = embeds[:EMBEDS]
        kwargs.pop("embed", None)
        kwargs["embeds"] = embeds
    budget, fitted = TOTAL, []
    for embed in embeds:
        fit_embed(embed, budget)
        if embed_size(embed) > budget:
            log.info("reply trimmed: %d of %d embeds fit in %d characters", len(fitted), len(embeds), TOTAL)
            break
        budget -= embed_size(embed)
        fitted.append(embed)
    if len(fitted) < len(embeds):
        kwargs.pop("embed", None)
        kwargs["embeds"] = fitted
    return kwargs
