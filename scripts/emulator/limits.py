"""Discord's size limits on a message body: past them Discord answers 400 (50035 Invalid Form Body).

The numbers are Discord's documented ones, kept here on their own (not imported from the bot), so
a bot that breaks them fails against the emulator as it would against Discord.
"""

from __future__ import annotations

from typing import Any

CONTENT = 2000
EMBEDS = 10
TITLE = 256
DESCRIPTION = 4096
FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
AUTHOR = 256
TOTAL = 6000


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _embed_problems(index: int, embed: dict[str, Any]) -> tuple[list[str], int]:
    where = f"embeds.{index}"
    problems: list[str] = []
    footer = _text((embed.get("footer") or {}).get("text"))
    author = _text((embed.get("author") or {}).get("name"))
    parts = [("title", _text(embed.get("title")), TITLE), ("description", _text(embed.get("description")),
             DESCRIPTION), ("footer.text", footer, FOOTER), ("author.name", author, AUTHOR)]
    fields = embed.get("fields") or []
    if len(fields) > FIELDS:
        problems.append(f"{where}.fields: must be {FIELDS} or fewer in length")
    for n, fld in enumerate(fields):
        parts.append((f"fields.{n}.name", _text(fld.get("name")), FIELD_NAME))
        parts.append((f"fields.{n}.value", _text(fld.get("value")), FIELD_VALUE))
    for name, text, limit in parts:
        if len(text) > limit:
            problems.append(f"{where}.{name}: must be {limit} or fewer in length")
    return problems, sum(len(text) for _, text, _ in parts)


def message_problems(body: dict[str, Any] | None) -> list[str]:
    """What Discord would refuse in a message create/edit body (empty: nothing)."""
    body = body or {}
    problems: list[str] = []
    if len(_text(body.get("content"))) > CONTENT:
        problems.append(f"content: must be {CONTENT} or fewer in length")
    embeds = body.get("embeds") or []
    if len(embeds) > EMBEDS:
        problems.append(f"embeds: must be {EMBEDS} or fewer in length")
    total = 0
    for index, embed in enumerate(embeds):
        found, size = _embed_problems(index, embed or {})
        problems += found
        total += size
    if total > TOTAL:
        problems.append(f"embeds: embed size exceeds maximum size of {TOTAL}")
    return problems
