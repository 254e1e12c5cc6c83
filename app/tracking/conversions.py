"""Conversions: a member whose first join is attributed to a staff code and who holds the guild's
conversion role is one conversion for that staff member, recorded once.

Found in three places, so no conversion is missed whatever the order of events:

- a role gained (GUILD_MEMBER_UPDATE) by a member already attributed;
- a join recorded or settled (from awaiting to attributed, or found after a downtime) whose
  member already holds the role (the role may have come first, or while the bot was down);
- start and guild available (`reconcile`): every unconverted member attributed to a staff code
  who holds the role now (granted while the bot was down).

The write is guarded (`converted_by: 0` in the filter), so finding one twice counts once. No Discord
here: the member's roles come from `member_roles`, which the tracker's `GuildAccess` supplies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from app.wiring.clock import Clock
from app.wiring.container import Repositories

log = logging.getLogger(__name__)

MemberRoles = Callable[[int, int], "set[int] | None"]


class Conversions:
    def __init__(self, repos: Repositories, clock: Clock, member_roles: MemberRoles) -> None:
        self.repos = repos
        self.clock = clock
        self.member_roles = member_roles

    async def role_gained(self, guild_id: int, member_id: int, added: Iterable[int]) -> bool:
        """The member gained roles `added`: a conversion when the conversion role is among them."""
        return await self._convert(guild_id, member_id, set(added))

    async def check(self, guild_id: int, member_id: int) -> bool:
        """A join of the member was just attributed: a conversion when they hold the role now."""
        roles = self.member_roles(guild_id, member_id)
        return roles is not None and await self._convert(guild_id, member_id, roles)

    async def reconcile(self, guild_id: int) -> int:
        """Every unconverted member attributed to a staff code who holds the role now; returns how
        many conversions were recorded."""
        config = await self.repos.guild_settings.get(guild_id)
        if config.conversion_role is None:
            return 0
        staff = {s.code: s.member_id for s in await self.repos.staff_codes.active(guild_id)}
        if not staff:
            return 0
        converted = 0
        for join in await self.repos.joins.unconverted(guild_id, sorted(staff)):
            roles = self.member_roles(guild_id, join.member_id)
            if roles is not None and config.conversion_role in roles:
                converted += await self._mark(guild_id, join.key, join.member_id, staff[str(join.code)])
        if converted:
            log.info("guild %s: %d conversions found at sync (roles granted while not watching)",
                     guild_id, converted)
        return converted

    async def _convert(self, guild_id: int, member_id: int, roles: set[int]) -> bool:
        config = await self.repos.guild_settings.get(guild_id)
        if config.conversion_role is None or config.conversion_role not in roles:
            return False
        first = await self.repos.joins.first_for_member(guild_id, member_id)
        if first is None or first.code is None or first.converted_by:
            return False
        staff = await self.repos.staff_codes.by_code(guild_id, first.code)
        if staff is None:
            return False
        return await self._mark(guild_id, first.key, member_id, staff.member_id)

    async def _mark(self, guild_id: int, key: str, member_id: int, staff_id: int) -> bool:
        converted = await self.repos.joins.mark_converted(key, staff_id, self.clock.now())
        if converted:
            log.info("conversion of %s in guild %s: staff %s", member_id, guild_id, staff_id)
        return converted
