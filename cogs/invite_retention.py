"""Embeds of `/invites retention` (no data access here; the definitions are in
`app/tracking/retention.py`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import discord

from app.tracking.retention import BOARD_HORIZON, Horizon, Medians, RetentionView, medians_of
from app.wiring.reply_limits import more_lines
from cogs import style
from cogs.invite_views import esc
from repositories.activity import Counters

RETENTION_PAGE_SIZE = 10
BOARD_TITLE = f"Invite retention - by members who stayed {style.count(BOARD_HORIZON, 'day')}"
DEFINITION = ("Stayed N days: still here N days after joining, or left after at least N days. "
              "Not yet known: joined less than N days ago and still here; left out of the share.")
NOBODY = "No members brought in yet."
COLOUR = discord.Colour.teal()


def horizon_label(days: int) -> str:
    return style.count(days, "day")


def horizon_text(h: Horizon) -> str:
    """`8 of 10 (80%), 2 not yet known`; `not yet known (3 members)` when nobody is known yet."""
    if not h.known:
        return f"not yet known ({style.count(h.pending, 'member')})" if h.pending else style.NOTHING
    text = f"{style.number(h.stayed)} of {style.number(h.known)} ({style.percent(h.stayed, h.known)})"
    return text + (f", {style.number(h.pending)} not yet known" if h.pending else "")


def horizons_line(view: RetentionView) -> str:
    """`1 day: 9 of 10 (90%) · 7 days: 8 of 10 (80%) · 30 days: ...`."""
    return " · ".join(f"{horizon_label(h.days)}: {horizon_text(h)}" for h in view.retention.horizons)


def medians_text(m: Medians) -> str:
    """`median 12 messages, 1h 05m in voice` (all time)."""
    if not m.members:
        return style.NOTHING
    voice = f"{style.duration(m.voice_s)} in voice" if m.voice_s else "no voice time"
    return f"median {style.count(m.messages, 'message')}, {voice}"


def medians_for(view: RetentionView, counters: Mapping[int, Counters]) -> Medians:
    return medians_of([counters.get(m, Counters()) for m in view.members])


def brought_in(view: RetentionView) -> str:
    return f"{style.count(view.retention.brought_in, 'member')} brought in"


def board_row(guild: discord.Guild, rank: int | None, member_id: int, view: RetentionView,
              counters: Mapping[int, Counters]) -> str:
    head = f"**{rank}.** " if rank is not None else ""
    return (f"{head}{style.member_of(guild, member_id)} - {brought_in(view)}\n"
            f"{horizons_line(view)}\n{medians_text(medians_for(view, counters))}")


def board_embed(guild: discord.Guild, rows: Sequence[tuple[int, RetentionView]],
                counters: Mapping[int, Counters], page: int, pages: int) -> discord.Embed:
    """One page of the retention board (`rows`: at most RETENTION_PAGE_SIZE)."""
    start = page * RETENTION_PAGE_SIZE
    lines = [board_row(guild, start + i + 1, m, view, counters)
             for i, (m, view) in enumerate(rows[:RETENTION_PAGE_SIZE])]
    embed = discord.Embed(title=BOARD_TITLE, colour=COLOUR,
                          description=more_lines(lines, 4096) if lines else NOBODY)
    embed.set_footer(text=f"Page {page + 1}/{pages} · {DEFINITION}")
    return embed


def own_board_embed(guild: discord.Guild, member_id: int, view: RetentionView,
                    counters: Mapping[int, Counters]) -> discord.Embed:
    """The board for a member who may see only their own figures (`app.wiring.privacy`)."""
    own = board_row(guild, None, member_id, view, counters) if view.retention.brought_in else NOBODY
    embed = discord.Embed(title=BOARD_TITLE, colour=COLOUR,
                          description=f"{style.own_row_only('invites retention')}\n\n{own}")
    embed.set_footer(text=DEFINITION)
    return embed


def _figures(embed: discord.Embed, view: RetentionView, counters: Mapping[int, Counters]) -> None:
    for h in view.retention.horizons:
        embed.add_field(name=horizon_label(h.days), value=horizon_text(h))
    embed.add_field(name="Median activity (all time)",
                    value=medians_text(medians_for(view, counters)), inline=False)
    embed.set_footer(text=DEFINITION)


def inviter_embed(guild: discord.Guild, name: str, member_id: int, view: RetentionView,
                  by_code: Sequence[tuple[str, RetentionView]],
                  counters: Mapping[int, Counters]) -> discord.Embed:
    """`/invites retention member:x`: the inviter's figures, then one line per code."""
    embed = discord.Embed(title=f"Invite retention of {esc(name)}", colour=COLOUR)
    if not view.retention.brought_in:
        embed.description = f"{style.member(member_id)}: {NOBODY}"
        return embed
    embed.description = f"{style.member(member_id)}: {brought_in(view)} (first joins credited to them)"
    _figures(embed, view, counters)
    lines = [f"{style.code(code) if code else 'no code'}: {brought_in(v)} · {horizons_line(v)} · "
             f"{medians_text(medians_for(v, counters))}" for code, v in by_code]
    embed.add_field(name="By code", value=more_lines(lines, what="more codes"), inline=False)
    return embed


def code_embed(guild: discord.Guild, code: str, view: RetentionView, inviter_id: int | None,
               counters: Mapping[int, Counters]) -> discord.Embed:
    """`/invites retention code:abc` (with `member`: only that inviter's members through it)."""
    embed = discord.Embed(title=f"Invite retention of code {style.code(code)}", colour=COLOUR)
    if not view.retention.brought_in:
        whose = f" for {style.member(inviter_id)}" if inviter_id is not None else ""
        embed.description = f"No members brought in through {style.code(code)}{whose} yet."
        return embed
    inviters = ", ".join(style.member_of(guild, i) for i in sorted(view.inviters))
    embed.description = f"{brought_in(view)} through it, credited to {inviters}"
    _figures(embed, view, counters)
    return embed
