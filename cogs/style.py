"""One reply style for every command: members, times, durations, counts, fake reasons and errors.

Every cog builds its replies from these helpers, so a member reads the same way everywhere:

- members as `<@id>` (embeds and bot replies never ping: the bot sends with no allowed mentions),
  a former member as `<@id> (name, left)` with the stored name, never a bare id;
- points in time as Discord timestamps (`<t:..:f>`, `<t:..:R>`), shown in the reader's time zone;
- durations `48s`, `12m`, `3h 05m`, and `—` for nothing;
- counts with their unit and the right plural (`1 invite`, `2 invites`), thousands separated;
- one wording per concept: fake reasons with the account age and the guild's threshold, one
  permission refusal, errors that name the command or value that fixes them, empty states in words.
"""

from __future__ import annotations

from datetime import datetime

import discord

from app.tracking.attribution import LEFT_QUICKLY, REPEAT_JOINER, SELF_INVITE, YOUNG_ACCOUNT
from cogs.text import safe_name

NOTHING = "—"
MANAGE_SERVER = "Manage Server"
# Units whose plural is not the singular plus "s".
PLURALS = {"bonus": "bonuses"}


# ---- numbers -------------------------------------------------------------------------------------
def number(value: int) -> str:
    """`1,234` (thousands separated)."""
    return f"{value:,}"


def plural(n: int, unit: str) -> str:
    """The unit for `n` of it: `invite` / `invites` (`bonus` / `bonuses`)."""
    if abs(n) == 1:
        return unit
    return PLURALS.get(unit, unit + "s")


def count(n: int, unit: str) -> str:
    """`1 invite`, `2 invites`, `1,200 messages`."""
    return f"{number(n)} {plural(n, unit)}"


def signed(n: int, unit: str) -> str:
    """`+2 bonus invites` / `-1 bonus invite`."""
    return f"{n:+,d} {plural(n, unit)}"


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else NOTHING


# ---- durations and time --------------------------------------------------------------------------
def duration(seconds: float) -> str:
    """`48s` under a minute, `12m` under an hour, `3h 05m` from an hour on, `—` for nothing."""
    seconds = max(0, int(seconds))
    if seconds == 0:
        return NOTHING
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{number(seconds // 3600)}h {seconds % 3600 // 60:02d}m"


def days(n: int) -> str:
    """An age in words: `1 day`, `45 days`, `3 months`, `2 years`."""
    n = max(0, n)
    if n >= 730:
        return count(n // 365, "year")
    if n >= 60:
        return count(n // 30, "month")
    return count(n, "day")


def when(moment: datetime | None, style: str = "f") -> str:
    """A Discord timestamp (`<t:..:f>` date and time, `<t:..:R>` relative), `never` for none."""
    return discord.utils.format_dt(moment, style) if moment is not None else "never"  # type: ignore[arg-type]


def ago(moment: datetime | None) -> str:
    return when(moment, "R")


# ---- members, channels, roles --------------------------------------------------------------------
def member(member_id: int, name: str | None = None, *, present: bool = True) -> str:
    """`<@id>`; a former member `<@id> (name, left)` with the stored name (clients show an unknown
    user's mention as "@unknown-user", so the name is the fallback)."""
    mention = f"<@{member_id}>"
    if present:
        return mention
    return f"{mention} ({safe_name(name)}, left)" if name else f"{mention} (left)"


def member_of(guild: discord.Guild, member_id: int, name: str | None = None) -> str:
    """`member` with presence from the guild's member cache."""
    return member(member_id, name, present=guild.get_member(member_id) is not None)


def channel(channel_id: int | None) -> str:
    return f"<#{channel_id}>" if channel_id else "not set"


def role(role_id: int | None) -> str:
    return f"<@&{role_id}>" if role_id else "not set"


def code(value: str | None) -> str:
    """An invite code in code style (never formats), `—` for none."""
    return f"`{value.replace('`', '')}`" if value else NOTHING


def rank(position: int | None) -> str:
    return f"#{number(position)}" if position is not None else "not ranked"


# ---- invites -------------------------------------------------------------------------------------
def invite_total(total: int, regular: int, left: int, fake: int, bonus: int) -> str:
    """`**2 invites** (3 joined, 1 left)`: the total first, then how the joins became it;
    `No invites yet` when nothing was ever counted."""
    if not (regular or left or fake or bonus):
        return "No invites yet"
    parts = [count(regular, "join")] if regular else []
    parts += [f"{number(left)} left"] if left else []
    parts += [f"{number(fake)} fake"] if fake else []
    parts += [signed(bonus, "bonus invite")] if bonus else []
    return f"**{count(total, 'invite')}** ({', '.join(parts)})"


def fake_text(reason: str, *, account_days: int | None = None, threshold_days: int = 0,
              stayed_seconds: int | None = None, threshold_seconds: int = 0) -> str:
    """Why a join is fake, with the figure and the guild's threshold it was measured against:
    `fake: account 2 days old (threshold 7 days)`; "" when it is not fake."""
    if not reason:
        return ""
    if reason == YOUNG_ACCOUNT:
        age = days(account_days) if account_days is not None else "of unknown age"
        old = f"{age} old" if account_days is not None else age
        return f"fake: account {old} (threshold {count(threshold_days, 'day')})"
    if reason == SELF_INVITE:
        return "fake: joined through their own invite"
    if reason == REPEAT_JOINER:
        return "fake: rejoined (this server counts rejoins as fake)"
    if reason == LEFT_QUICKLY:
        stayed = duration(stayed_seconds) if stayed_seconds else "at once"
        return f"fake: left after {stayed} (threshold {duration(threshold_seconds)})"
    return f"fake: {reason.replace('_', ' ')}"


# ---- refusals and errors -------------------------------------------------------------------------
def needs_manage_server(command: str) -> str:
    """The one permission refusal: what is missing and for which command."""
    return f"You need the **{MANAGE_SERVER}** permission to use `/{command}`."


def busy(running: str | None, command: str) -> str:
    job = running or "another job"
    return f"{job[:1].upper()}{job[1:]} is running in this server; run `/{command}` again when it is done."


def only_own(command: str) -> str:
    return (f"This server lets members see only their own `/{command}`; an admin can change it with "
            "`/settings set members_view_others:True`.")


def own_row_only(command: str) -> str:
    """Why a board shows the member only their own row (`app.wiring.privacy`)."""
    return (f"This server lets members see only their own figures, so `/{command}` shows you your own "
            "row; the whole board is for admins (Manage Server).")


def private_lookup(interaction: discord.Interaction, member_id: int) -> bool:
    """An admin (Manage Server) looking up another member: the answer is ephemeral, so fake
    verdicts and counts are not posted to the channel as a side effect of a moderation check."""
    return member_id != interaction.user.id and bool(interaction.permissions.manage_guild)


def verb(n: int, one: str, many: str) -> str:
    """`1 code differs` / `2 codes differ`: the verb agreeing with `n`."""
    return one if abs(n) == 1 else many


def yes_no(value: bool) -> str:
    return "yes" if value else "no"
