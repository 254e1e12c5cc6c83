"""/rewards through real slash commands: the roles granted and removed in the emulator."""

from __future__ import annotations

import asyncio
import copy
import random
import re
from typing import Any

import discord
import pytest

from repositories.activity import Credit
from scripts.emulator import payloads
from scripts.emulator.constants import Perm
from scripts.emulator.ratelimits import MEMBER_ROLE_ROUTE
from tests.botharness import GUILD, Harness

G, ADA, BOB, CY = 1, 101, 102, 103
GENERAL = 10
VIP, BOOST, MODS, REGULAR, TOP_CHAT = 50, 52, 53, 54, 55
NO_SEASON_NOTE = " No season has started yet: until `/season start`, this rule gives the role to nobody."


@pytest.fixture
def guild_spec() -> dict[str, Any]:
    spec = copy.deepcopy(GUILD)
    spec["roles"] += [{"id": BOOST, "name": "Booster"}, {"id": MODS, "name": "Mods"},
                      {"id": REGULAR, "name": "Regular"}, {"id": TOP_CHAT, "name": "Top chat"}]
    return spec


async def started(make_tracker: Any, **settings: Any) -> Harness:
    """The bot, with a managed role (BOOST) and a role above the bot's (MODS) in the guild."""
    h = await make_tracker(start=False, **settings)
    guild = h.emu.guild(G)
    guild.roles[BOOST].managed = True
    guild.roles[MODS].position = guild.roles[guild.bot_role_id].position + 1
    await h.start()
    return h


def holders(h: Harness, role: int) -> set[int]:
    guild = h.emu.guild(G)
    return {m for m in (ADA, BOB, CY) if role in guild.members[h.emu.user_id(m)].roles}


async def messages(h: Harness, member: int, n: int) -> None:
    for _ in range(n):
        h.emu.message(member, GENERAL)
    await h.settle()


async def evaluate(h: Harness) -> None:
    """What the `REWARDS_SECONDS` job runs."""
    assert h.bot is not None
    await h.bot.get_cog("Rewards").evaluate_all()
    await h.settle()


async def test_a_top_rule_gives_the_role_and_takes_it_from_who_drops_out(make_tracker: Any) -> None:
    h = await started(make_tracker)
    emu = h.emu
    await messages(h, BOB, 3)
    await messages(h, CY, 1)
    rec = await emu.command(ADA, "rewards add", {"role": VIP, "metric": "messages", "top": 1})
    assert rec.ephemeral and rec.text().startswith(f"Rule `{rec.id}` added: <@&{VIP}>"), rec.text()
    await h.settle()
    assert holders(h, VIP) == {BOB}

    await messages(h, CY, 3)  # CY: 4, BOB: 3
    await evaluate(h)
    assert holders(h, VIP) == {CY}

    log = [d async for d in h.db.reward_log.find({}).sort("at_ms", 1)]
    assert [(d["member_id"], d["role_id"], d["action"], d["rule_id"]) for d in log] == [
        (emu.user_id(BOB), VIP, "granted", rec.id), (emu.user_id(CY), VIP, "granted", rec.id),
        (emu.user_id(BOB), VIP, "removed", rec.id),
    ]
    rule = await h.db.reward_rules.find_one({"_id": f"{G}:{rec.id}"})
    assert (rule["role_id"], rule["metric"], rule["top"], rule["status"]) == (VIP, "messages", 1, "active")

    listed = await emu.command(ADA, "rewards list")
    assert listed.ephemeral
    assert listed.embed["description"] == f"`{rec.id}` <@&{VIP}>: top 1 of messages (all time)"
    status = await emu.command(ADA, "data-status")
    fields = {f["name"]: f["value"] for f in status.embed["fields"]}
    assert fields["Activity roles"] == "2 changes done, none waiting", fields  # the last evaluation's

    await emu.command(ADA, "data erase", {"member": CY})  # their role log goes with their data...
    await h.settle()
    assert await h.db.reward_log.count_documents({"member_id": emu.user_id(CY)}) == 0
    await evaluate(h)
    assert holders(h, VIP) == {BOB}  # ...and with their messages gone, the top is BOB again


async def test_a_reach_rule_over_voice_hours_and_removing_the_rule(make_tracker: Any) -> None:
    h = await started(make_tracker)
    emu = h.emu
    emu.voice(BOB, 20)
    await h.settle()
    h.clock.advance(2 * 3600)
    emu.voice(BOB, None)
    await h.settle()
    rec = await emu.command(ADA, "rewards add", {"role": VIP, "metric": "voice", "period": "7d", "reach": 2})
    assert "reach 2 hours of voice (last 7 days)" in rec.text(), rec.text()
    await h.settle()
    assert holders(h, VIP) == {BOB}
    removed = await emu.command(ADA, "rewards remove", {"rule": str(rec.id)})
    assert removed.text().startswith(f"Rule `{rec.id}` removed"), removed.text()
    await h.settle()
    assert holders(h, VIP) == {BOB}  # no rule any more: the role is left as it is
    assert (await emu.command(ADA, "rewards list")).embed["description"].startswith("No rules yet")
    for text in ("12345", "²", "99999999999999999999", "-1"):
        unknown = await emu.command(ADA, "rewards remove", {"rule": text})
        assert unknown.text().startswith(f"No rule `{text}` in this server"), unknown.text()


@pytest.mark.parametrize(("options", "refusal"), [
    ({"role": BOOST, "metric": "messages", "reach": 5}, f"<@&{BOOST}> is managed by Discord"),
    ({"role": MODS, "metric": "messages", "reach": 5}, f"<@&{MODS}> is at or above the bot's highest role"),
    ({"role": G, "metric": "messages", "reach": 5}, "@everyone is every member's role"),
    ({"role": VIP, "metric": "messages", "reach": 5, "top": 3}, "Give exactly one of `reach`"),
    ({"role": VIP, "metric": "camera"}, "Give exactly one of `reach`"),
    ({"role": VIP, "metric": "messages", "reach": 5, "active_days": 2}, "Give exactly one of `reach`"),
    ({"role": VIP, "active_days": 2, "metric": "messages"}, "`metric` and `period` do not apply"),
    ({"role": VIP, "active_days": 2, "period": "7d"}, "`metric` and `period` do not apply"),
    ({"role": VIP, "active_days": 8}, "`active_days` (8) cannot be more than `of_last` (7)"),
    ({"role": VIP, "metric": "messages", "reach": 5, "of_last": 7}, "`of_last` goes with `active_days`"),
    ({"role": MODS, "active_days": 1, "of_last": 1}, f"<@&{MODS}> is at or above the bot's highest role"),
])
async def test_refused_rules_are_not_stored(make_tracker: Any, options: dict[str, Any], refusal: str) -> None:
    h = await started(make_tracker)
    rec = await h.emu.command(ADA, "rewards add", options)
    assert rec.ephemeral and rec.text().startswith(refusal), rec.text()
    assert await h.db.reward_rules.count_documents({}) == 0


async def test_without_manage_roles_a_rule_is_refused_and_discord_would_refuse_too(make_tracker: Any) -> None:
    h = await started(make_tracker)
    emu = h.emu
    guild = emu.guild(G)
    emu.update_role(G, guild.bot_role_id, permissions=guild.roles[guild.bot_role_id].permissions
                    & ~Perm.MANAGE_ROLES)
    await h.settle()
    rec = await emu.command(ADA, "rewards add", {"role": VIP, "active_days": 1, "of_last": 1})
    assert rec.text().startswith("The bot lacks the Manage Roles permission"), rec.text()
    assert await h.db.reward_rules.count_documents({}) == 0
    assert h.bot is not None
    member = h.bot.get_guild(G).get_member(emu.user_id(CY))  # type: ignore[union-attr]
    with pytest.raises(discord.Forbidden):  # the emulator answers as Discord does
        await member.add_roles(discord.Object(VIP))  # type: ignore[union-attr]


async def test_an_active_rule_counts_the_days_active_as_for_streaks_in_its_window(make_tracker: Any) -> None:
    h = await started(make_tracker)
    emu = h.emu
    day = 24 * 3600
    await messages(h, BOB, 1)  # day 1: BOB
    h.clock.advance(day)
    await messages(h, BOB, 1)  # day 2: BOB and CY
    await messages(h, CY, 1)
    rec = await emu.command(ADA, "rewards add", {"role": VIP, "active_days": 2, "of_last": 3})
    added = f"Rule `{rec.id}` added: <@&{VIP}>, active on 2 of the last 3 days. "
    assert rec.text().startswith(added), rec.text()
    await h.settle()
    assert holders(h, VIP) == {BOB}
    rule = await h.db.reward_rules.find_one({"_id": f"{G}:{rec.id}"})
    assert (rule["metric"], rule["period"], rule["active_days"], rule["of_last"]) == ("active", None, 2, 3)
    assert (rule["reach"], rule["top"]) == (None, None)
    listed = await emu.command(ADA, "rewards list")
    assert listed.embed["description"] == f"`{rec.id}` <@&{VIP}>: active on 2 of the last 3 days"

    h.clock.advance(day)
    await messages(h, CY, 1)  # day 3: CY (days 2 and 3); BOB still has days 1 and 2 of the last 3
    await evaluate(h)
    assert holders(h, VIP) == {BOB, CY}
    h.clock.advance(day)  # day 4: the window is days 2 to 4, BOB has one day in it
    await evaluate(h)
    assert holders(h, VIP) == {CY}
    await emu.command(ADA, "settings set", {"streak_min_messages": 2})  # CY's days had one message each
    await evaluate(h)
    assert holders(h, VIP) == set()
    log = h.db.reward_log.find({}).sort("at_ms", 1)
    assert [(d["member_id"], d["action"], d["rule_id"]) async for d in log] == [
        (emu.user_id(BOB), "granted", rec.id), (emu.user_id(CY), "granted", rec.id),
        (emu.user_id(BOB), "removed", rec.id), (emu.user_id(CY), "removed", rec.id)]


async def test_roles_changed_while_the_bot_was_down_are_corrected_at_the_next_start(make_tracker: Any,
                                                                                    ) -> None:
    h = await started(make_tracker)
    emu = h.emu
    await messages(h, BOB, 5)
    await emu.command(ADA, "rewards add", {"role": VIP, "metric": "messages", "reach": 5})
    await h.settle()
    assert holders(h, VIP) == {BOB}

    async def while_down() -> None:
        emu.role_remove(BOB, VIP)  # someone took it from BOB, and gave it to CY
        emu.role_add(CY, VIP)
        assert holders(h, VIP) == {CY}

    await h.restart(between=while_down)
    assert holders(h, VIP) == {BOB}
    log = [(d["member_id"], d["action"]) async for d in h.db.reward_log.find({}).sort("at_ms", 1)]
    assert log[-2:] == [(emu.user_id(BOB), "granted"), (emu.user_id(CY), "removed")]


async def until_held(h: Harness, role: int, members: set[int], seconds: float = 10) -> None:
    """Polls the emulator's roles (the bot changes them in the background)."""
    for _ in range(int(seconds / 0.05)):
        if holders(h, role) == members:
            return
        await asyncio.sleep(0.05)
    assert holders(h, role) == members


async def test_roles_follow_count_changes_without_waiting_for_the_periodic_check(make_tracker: Any) -> None:
    """Reach, top and active rules follow each message within `REWARDS_CHANGE_SECONDS`, while the
    full check runs every 300 s; a full check afterwards finds nothing left to change."""
    h = await started(make_tracker, rewards_change_seconds=0.2)
    emu = h.emu
    assert h.bot is not None
    assert h.bot.scheduler.get_job("rewards").trigger.interval.total_seconds() == 300
    for options in ({"role": VIP, "metric": "messages", "reach": 3},
                    {"role": TOP_CHAT, "metric": "messages", "top": 1},
                    {"role": REGULAR, "active_days": 1, "of_last": 7}):
        await emu.command(ADA, "rewards add", options)
    await h.settle()
    assert holders(h, VIP) | holders(h, TOP_CHAT) | holders(h, REGULAR) == set()

    await messages(h, BOB, 1)
    await until_held(h, REGULAR, {BOB})
    await until_held(h, TOP_CHAT, {BOB})
    await messages(h, CY, 2)  # CY overtakes BOB: the top role moves
    await until_held(h, TOP_CHAT, {CY})
    await until_held(h, REGULAR, {BOB, CY})
    await messages(h, BOB, 2)  # BOB: 3, reaches VIP and is on top again
    await until_held(h, VIP, {BOB})
    await until_held(h, TOP_CHAT, {BOB})
    assert holders(h, REGULAR) == {BOB, CY}

    cog = h.bot.get_cog("Rewards")
    await cog.wait_idle()
    logged = await h.db.reward_log.count_documents({})
    await evaluate(h)  # the full check agrees
    assert await h.db.reward_log.count_documents({}) == logged == 7


FOLLOWED = 200
FOLLOWED_SPEC = copy.deepcopy(GUILD)
FOLLOWED_SPEC["roles"] += [{"id": TOP_CHAT, "name": "Top chat"}, {"id": REGULAR, "name": "Regular"}]
FOLLOWED_SPEC["members"] += [{"id": 2_000_000 + i, "name": f"f{i}"} for i in range(FOLLOWED)]


@pytest.mark.parametrize("guild_spec", [FOLLOWED_SPEC])
async def test_following_counts_agrees_with_the_full_check_over_random_bursts(make_tracker: Any) -> None:
    """Bursts of messages from random members (seeded), each followed by the changed members' check
    only: a top 10, a reach rule over 7 days and an active rule then agree with what a full check
    gives (it queues nothing); the top role moved many times on the way."""
    h = await make_tracker(rewards_change_seconds=0.1)
    emu = h.emu
    assert h.bot is not None
    cog = h.bot.get_cog("Rewards")
    for options in ({"role": TOP_CHAT, "metric": "messages", "top": 10},
                    {"role": VIP, "metric": "messages", "reach": 4, "period": "7d"},
                    {"role": REGULAR, "active_days": 1, "of_last": 3}):
        await emu.command(ADA, "rewards add", options)
    await h.settle()
    rng = random.Random(2026_12_03)
    crowd = [2_000_000 + i for i in range(FOLLOWED)]
    for burst in range(8):
        for member in rng.choices(crowd, k=60):
            h.emu.message(member, GENERAL)
        await h.settle()
        await asyncio.sleep(0.3)  # the follow-up check is due
        await cog.wait_idle()
        logged = await h.db.reward_log.count_documents({})
        await cog.evaluate(h.bot.get_guild(G))
        assert not cog.progress[G].pending, (burst, list(cog.progress[G].pending)[:5])
        assert await h.db.reward_log.count_documents({}) == logged
        assert len(holders_of(h, TOP_CHAT)) == 10
    assert await h.db.reward_log.count_documents({"role_id": TOP_CHAT, "action": "removed"}) >= 5


def holders_of(h: Harness, role: int) -> set[int]:
    return {m.id for m in h.emu.guild(G).members.values() if role in m.roles}


async def log_of(h: Harness) -> list[tuple[int, int, str, bool]]:
    return [(d["member_id"], d["role_id"], d["action"], bool(d.get("pending")))
            async for d in h.db.reward_log.find({}).sort("at_ms", 1)]


def killed_mid_change(h: Harness) -> None:
    """The process dies where a change's task stands: nothing after that point runs."""
    assert h.bot is not None
    for progress in h.bot.get_cog("Rewards").progress.values():
        assert progress.task is not None
        progress.task.cancel()


@pytest.mark.parametrize("discord_accepted", [True, False], ids=["after-discord-accepted", "before-asking"])
async def test_a_change_killed_midway_is_logged_once_and_made(
    make_tracker: Any, monkeypatch: pytest.MonkeyPatch, discord_accepted: bool,
) -> None:
    """Killed after Discord accepted the grant and before the log write, or right before the
    request: the next start finds the intent the bot recorded before asking and resolves it from
    what the member holds; either way the grant is made and logged once."""
    h = await started(make_tracker)
    emu = h.emu
    await messages(h, BOB, 2)
    real_add_roles = discord.Member.add_roles
    reached = asyncio.Event()

    async def killed_here(member: discord.Member, *roles: Any, **kwargs: Any) -> None:
        if discord_accepted:
            await real_add_roles(member, *roles, **kwargs)
        reached.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(discord.Member, "add_roles", killed_here)
    await emu.command(ADA, "rewards add", {"role": VIP, "metric": "messages", "reach": 1})
    await asyncio.wait_for(reached.wait(), 10)
    assert holders(h, VIP) == ({BOB} if discord_accepted else set())
    killed_mid_change(h)
    monkeypatch.undo()
    await h.restart(crash=True)
    assert holders(h, VIP) == {BOB}  # not made: made by the start's evaluation
    assert await log_of(h) == [(emu.user_id(BOB), VIP, "granted", False)]


async def test_a_log_write_that_fails_stops_the_drain_with_one_error_and_the_next_check_makes_it(
    make_tracker: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """The intents cannot be written (here: a WriteRefused-like error from the writer): nothing is
    asked of Discord without its intent, the drain stops with one error line instead of dying
    silently, and the next check queues and makes the change."""
    h = await started(make_tracker)
    emu = h.emu
    await messages(h, BOB, 2)
    assert h.bot is not None
    log_repo = h.bot.repos.reward_log

    async def refused(entries: Any) -> None:
        raise RuntimeError("refused by MongoDB")

    monkeypatch.setattr(log_repo, "intend", refused)
    await emu.command(ADA, "rewards add", {"role": VIP, "metric": "messages", "reach": 1})
    await h.settle()
    assert holders(h, VIP) == set()  # not asked without its intent
    stopped = [r for r in caplog.records if "applying changes stopped" in r.getMessage()]
    assert len(stopped) == 1 and stopped[0].levelname == "ERROR", caplog.text[-2000:]
    monkeypatch.undo()
    await evaluate(h)
    assert holders(h, VIP) == {BOB}
    assert await log_of(h) == [(emu.user_id(BOB), VIP, "granted", False)]


async def test_a_role_moved_above_the_bot_is_skipped_with_one_warning(
    make_tracker: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    h = await started(make_tracker)
    emu = h.emu
    assert h.bot is not None
    job = h.bot.scheduler.get_job("rewards")
    assert job.trigger.interval.total_seconds() == 300  # REWARDS_SECONDS' default
    await messages(h, BOB, 2)
    await emu.command(ADA, "rewards add", {"role": VIP, "metric": "messages", "reach": 1})
    await h.settle()
    assert holders(h, VIP) == {BOB}
    guild = emu.guild(G)
    role = guild.roles[VIP]
    role.position = guild.roles[guild.bot_role_id].position + 5  # an admin moved it above the bot's
    emu._dispatch("GUILD_ROLE_UPDATE", {"guild_id": str(G), "role": payloads.role(role)}, G)
    await messages(h, CY, 2)
    caplog.clear()
    for _ in range(3):
        await evaluate(h)
    assert holders(h, VIP) == {BOB}  # CY qualifies, but the bot may not give the role any more
    skipped = [r for r in caplog.records if f"role {VIP} skipped" in r.getMessage()]
    assert len(skipped) == 1 and skipped[0].levelname == "WARNING", skipped


async def test_a_rate_limit_is_waited_out_and_a_refusal_skips_the_roles_changes(
    make_tracker: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    h = await started(make_tracker)
    emu = h.emu
    await messages(h, BOB, 2)
    await messages(h, CY, 2)
    emu.fail("PUT", rf"/guilds/{G}/members/\d+/roles/{VIP}", status=429, retry_after=0.2, times=1)
    await emu.command(ADA, "rewards add", {"role": VIP, "metric": "messages", "reach": 1})
    await h.settle()
    assert holders(h, VIP) == {BOB, CY}  # discord.py waited out the 429

    await messages(h, ADA, 1)
    guild = emu.guild(G)
    below = guild.roles[VIP].position
    # moved above the bot's role, and the bot has not seen the GUILD_ROLE_UPDATE yet: the emulator
    # answers 403 Missing Permissions, as Discord does
    guild.roles[VIP].position = guild.roles[guild.bot_role_id].position + 1
    caplog.clear()
    await evaluate(h)
    await evaluate(h)
    assert holders(h, VIP) == {BOB, CY}
    refused = [r for r in caplog.records if "Discord refused to change role" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelname == "WARNING", refused
    assert "403 Missing Permissions" in refused[0].getMessage()
    guild.roles[VIP].position = below  # moved back: the next check gives ADA the role
    await evaluate(h)
    assert holders(h, VIP) == {ADA, BOB, CY}


async def test_season_rules_count_only_the_current_season_and_follow_a_season_start(make_tracker: Any,
                                                                                       ) -> None:
    h = await started(make_tracker)
    emu = h.emu
    day = 24 * 3600
    await messages(h, BOB, 5)  # 2026-03-10, before any season
    emu.role_add(CY, VIP)  # by hand: a ruled role is the bot's, and with no season nobody qualifies
    top = await emu.command(ADA, "rewards add", {"role": VIP, "metric": "messages", "period": "season",
                                                 "top": 1})
    assert top.text() == (f"Rule `{top.id}` added: <@&{VIP}>, top 1 of messages (this season). The bot now "
                          f"manages <@&{VIP}>: it gives it to members who qualify and takes it from those "
                          "who do not." + NO_SEASON_NOTE), top.text()
    await h.settle()
    assert holders(h, VIP) == set()
    stored = await h.db.reward_rules.find_one({"_id": f"{G}:{top.id}"})
    assert (stored["metric"], stored["period"], stored["top"]) == ("messages", "season", 1)

    spring = await emu.command(ADA, "season start", {"name": "Spring", "starts": "tomorrow"})
    assert spring.text().startswith("Season **Spring** counts from 00:00 tomorrow"), spring.text()
    reach = await emu.command(ADA, "rewards add", {"role": REGULAR, "metric": "messages",
                                                   "period": "season", "reach": 2})
    assert reach.text().endswith("reach 2 messages (this season). The bot now manages "
                                 f"<@&{REGULAR}>: it gives it to members who qualify and takes it from those "
                                 "who do not. No season is current yet: until **Spring** starts "
                                 "(2026-03-11), this rule gives the role to nobody."), reach.text()
    await evaluate(h)
    assert holders(h, VIP) == holders(h, REGULAR) == set()  # Spring is not current before its day
    listed = await emu.command(ADA, "rewards list")
    assert listed.embed["description"] == (f"`{top.id}` <@&{VIP}>: top 1 of messages (this season)\n"
                                           f"`{reach.id}` <@&{REGULAR}>: reach 2 messages (this season)")

    h.clock.advance(day)  # 2026-03-11: Spring; BOB's 5 messages were before it
    await messages(h, CY, 2)
    await messages(h, ADA, 1)
    await evaluate(h)  # the REWARDS_SECONDS check on Spring's first day
    assert (holders(h, VIP), holders(h, REGULAR)) == ({CY}, {CY})

    h.clock.advance(day)  # 2026-03-12
    added = await emu.command(ADA, "rewards add", {"role": VIP, "metric": "messages", "period": "season",
                                                   "reach": 100})
    assert "No season" not in added.text(), added.text()  # Spring is current
    await h.settle()
    assert (holders(h, VIP), holders(h, REGULAR)) == ({CY}, {CY})
    await messages(h, BOB, 2)  # counted in Summer: it starts at 00:00 today
    summer = await emu.command(ADA, "season start", {"name": "Summer"})
    assert summer.text().startswith("Season **Summer** counts from 00:00 today"), summer.text()
    await h.settle()  # no check ran but the one /season start asked for
    assert (holders(h, VIP), holders(h, REGULAR)) == ({BOB}, {BOB})  # Summer's counts only
    log = h.db.reward_log.find({}).sort("at_ms", 1)
    assert [(d["member_id"], d["role_id"], d["action"], d["rule_id"]) async for d in log] == [
        (emu.user_id(CY), VIP, "removed", top.id),
        (emu.user_id(CY), VIP, "granted", top.id), (emu.user_id(CY), REGULAR, "granted", reach.id),
        (emu.user_id(BOB), VIP, "granted", top.id), (emu.user_id(BOB), REGULAR, "granted", reach.id),
        (emu.user_id(CY), VIP, "removed", top.id), (emu.user_id(CY), REGULAR, "removed", reach.id),
    ]  # grants first, then removals


CROWD = 5000
CROWD_SPEC = copy.deepcopy(GUILD)
CROWD_SPEC["members"] += [{"id": 1_000_000 + i, "name": f"m{i}", "roles": [VIP]} for i in range(CROWD - 1)]


async def drained_5000_changes(h: Harness) -> None:
    """The 5,000 changes just queued (VIP taken from the 4,999 of the crowd, given to BOB) drain in
    the background while `/data-status` and `/rewards list` answer with the progress, and end exact."""
    emu = h.emu
    seen: list[int] = []
    for _ in range(200):  # /data-status answers while the changes drain
        status = await emu.command(ADA, "data-status")
        line = {f["name"]: f["value"] for f in status.embed["fields"]}["Activity roles"]
        progress = re.fullmatch(r"([\d,]+) of 5,000 changes done", line)
        if progress and 0 < (done := int(progress.group(1).replace(",", ""))) < CROWD:
            seen.append(done)
        if len(set(seen)) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(set(seen)) >= 2 and seen == sorted(seen), seen  # moving forward
    listed = await emu.command(ADA, "rewards list")
    footer = listed.embed["footer"]["text"]
    assert re.fullmatch(r"Changes: [\d,]+ of 5,000 changes done", footer), footer

    assert h.bot is not None
    await asyncio.wait_for(h.bot.get_cog("Rewards").wait_idle(), 600)
    guild = emu.guild(G)
    assert [m for m in guild.members.values() if VIP in m.roles] == [guild.members[emu.user_id(BOB)]]
    assert await h.db.reward_log.count_documents({"action": "removed"}) == CROWD - 1
    assert await h.db.reward_log.count_documents({"action": "granted"}) == 1
    status = await emu.command(ADA, "data-status")
    fields = {f["name"]: f["value"] for f in status.embed["fields"]}
    assert fields["Activity roles"] == "5,000 changes done, none waiting"
    role_calls = [r for r in emu.requests if re.fullmatch(rf"/guilds/{G}/members/\d+/roles/{VIP}", r.path)]
    assert sum(r.status == 429 for r in role_calls) >= 2  # the injected ones, waited out
    assert sum(r.status == 204 for r in role_calls) == CROWD
    assert emu.route_limits.filled > 10  # the bucket was used up, again and again, and waited for


@pytest.mark.parametrize("guild_spec", [CROWD_SPEC])
async def test_a_rule_change_of_5000_roles_drains_in_the_background_within_the_rate_limits(
    make_tracker: Any,
) -> None:
    """4,999 members hold VIP by hand and BOB qualifies: the first rule takes it from them and gives
    it to BOB, one change at a time, within Discord's rate limit (the emulator announces its bucket,
    discord.py waits; two 429s with retry_after are waited out), while commands keep answering."""
    h = await make_tracker()
    emu = h.emu
    emu.route_limits.limits[MEMBER_ROLE_ROUTE] = (50, 0.2)
    await messages(h, BOB, 1)
    emu.fail("DELETE", rf"/guilds/{G}/members/\d+/roles/{VIP}", status=429, retry_after=0.3, times=2)
    rec = await emu.command(ADA, "rewards add", {"role": VIP, "metric": "messages", "reach": 1})
    assert rec.text().startswith(f"Rule `{rec.id}` added"), rec.text()
    await drained_5000_changes(h)


async def drain_under_way(h: Harness, done: int) -> Any:
    """The Rewards cog once `done` of the guild's queued changes are made."""
    assert h.bot is not None
    cog = h.bot.get_cog("Rewards")
    for _ in range(600):
        if G in cog.progress and cog.progress[G].done >= done:
            return cog
        await asyncio.sleep(0.05)
    raise AssertionError(f"not {done} changes done in 30 s")


@pytest.mark.parametrize("guild_spec", [CROWD_SPEC])
async def test_a_count_change_mid_drain_keeps_the_progress_of_the_whole_queue(make_tracker: Any) -> None:
    """BOB's count changes while the 5,000 changes drain: the check of the changed member replaces
    only BOB's queued changes, and `/data-status` still counts against the 5,000."""
    h = await make_tracker(rewards_change_seconds=0.05)
    emu = h.emu
    emu.route_limits.limits[MEMBER_ROLE_ROUTE] = (50, 0.2)
    await messages(h, BOB, 1)
    await emu.command(ADA, "rewards add", {"role": VIP, "metric": "messages", "reach": 1})
    cog = await drain_under_way(h, 20)
    real_evaluate_members = cog.evaluate_members
    checked: list[set[int]] = []

    async def evaluate_members(guild: discord.Guild, changed: set[int]) -> None:
        await real_evaluate_members(guild, changed)
        checked.append(changed)

    cog.evaluate_members = evaluate_members
    emu.message(BOB, GENERAL)
    for _ in range(500):  # the check of BOB, 0.05 s after the write
        if checked:
            break
        await asyncio.sleep(0.02)
    assert checked == [{emu.user_id(BOB)}] and cog.progress[G].pending  # still draining
    line = {f["name"]: f["value"] for f in (await emu.command(ADA, "data-status")).embed["fields"]}
    assert re.fullmatch(r"[\d,]+ of 5,000 changes done", line["Activity roles"]), line["Activity roles"]
    await asyncio.wait_for(cog.wait_idle(), 600)
    line = {f["name"]: f["value"] for f in (await emu.command(ADA, "data-status")).embed["fields"]}
    assert line["Activity roles"] == "5,000 changes done, none waiting"


SMALL_CROWD = 200
SMALL_CROWD_SPEC = copy.deepcopy(GUILD)
SMALL_CROWD_SPEC["members"] += [{"id": 1_000_000 + i, "name": f"m{i}", "roles": [VIP]}
                                for i in range(SMALL_CROWD - 1)]


@pytest.mark.parametrize("guild_spec", [SMALL_CROWD_SPEC])
async def test_a_crash_in_the_middle_of_a_batch_logs_each_change_once(
    make_tracker: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Changes are intended and confirmed 50 at a time: killed right after Discord accepted the
    60th (the second batch's 50 intents written, 10 of them made, none confirmed), the next start
    confirms the 10, drops the 40 never asked for, and makes the rest: each change made once and
    logged once."""
    h = await make_tracker()
    emu = h.emu
    await messages(h, BOB, 1)
    real_remove_roles = discord.Member.remove_roles
    removals = 0
    reached = asyncio.Event()

    async def killed_after_the_60th(member: discord.Member, *roles: Any, **kwargs: Any) -> None:
        nonlocal removals
        await real_remove_roles(member, *roles, **kwargs)
        removals += 1
        if removals == 59:  # BOB's grant is the first change
            reached.set()
            await asyncio.Event().wait()

    monkeypatch.setattr(discord.Member, "remove_roles", killed_after_the_60th)
    await emu.command(ADA, "rewards add", {"role": VIP, "metric": "messages", "reach": 1})
    await asyncio.wait_for(reached.wait(), 30)
    assert await h.db.reward_log.count_documents({"pending": {"$exists": False}}) == 50
    assert await h.db.reward_log.count_documents({"pending": True}) == 50  # the second batch
    killed_mid_change(h)
    monkeypatch.undo()
    await h.restart(crash=True)
    guild = emu.guild(G)
    assert [m for m in guild.members.values() if VIP in m.roles] == [guild.members[emu.user_id(BOB)]]
    role_calls = [r for r in emu.requests if re.fullmatch(rf"/guilds/{G}/members/\d+/roles/{VIP}", r.path)]
    assert sum(r.status == 204 for r in role_calls) == SMALL_CROWD  # none made twice
    assert await h.db.reward_log.count_documents({"action": "removed"}) == SMALL_CROWD - 1
    assert await h.db.reward_log.count_documents({"action": "granted"}) == 1
    assert await h.db.reward_log.count_documents({"pending": True}) == 0


@pytest.mark.parametrize("guild_spec", [CROWD_SPEC])
async def test_a_shutdown_mid_drain_finishes_the_change_under_way_and_drops_the_queue(
    make_tracker: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGTERM while 5,000 changes drain: the queue is dropped at once (no "still busy" error after
    the shutdown's idle wait), every change Discord made is logged and no intent is left pending.
    (The next start evaluates again: `test_roles_changed_while_the_bot_was_down_are_corrected...`.)"""
    h = await make_tracker()
    emu = h.emu
    emu.route_limits.limits[MEMBER_ROLE_ROUTE] = (50, 0.2)
    await messages(h, BOB, 1)
    await emu.command(ADA, "rewards add", {"role": VIP, "metric": "messages", "reach": 1})
    await drain_under_way(h, 20)
    caplog.clear()
    await h.stop()
    assert not [r for r in caplog.records if "still busy" in r.getMessage()], caplog.text[-2000:]
    made = [r for r in emu.requests if r.status == 204
            and re.fullmatch(rf"/guilds/{G}/members/\d+/roles/{VIP}", r.path)]
    logged = await h.db.reward_log.count_documents({"pending": {"$exists": False}})
    assert 20 <= len(made) == logged < CROWD
    assert await h.db.reward_log.count_documents({"pending": True}) == 0


@pytest.mark.parametrize("guild_spec", [CROWD_SPEC])
async def test_a_season_start_that_changes_5000_roles_drains_in_the_background(make_tracker: Any) -> None:
    """4,999 members hold VIP by a season rule, active in Spring only; BOB is active on the next day:
    `/season start` of Summer that day takes VIP from the 4,999 and gives it to BOB, in the
    background, within the rate limits, while commands keep answering."""
    h = await make_tracker()
    emu = h.emu
    assert h.bot is not None
    emu.route_limits.limits[MEMBER_ROLE_ROUTE] = (50, 0.2)
    await emu.command(ADA, "season start", {"name": "Spring"})  # 2026-03-10
    crowd = [emu.user_id(m["id"]) for m in CROWD_SPEC["members"] if VIP in m.get("roles", [])]
    await h.bot.repos.activity.add_messages([Credit(G, m, "2026-03-10", {"messages": 1}) for m in crowd],
                                            "seed-spring")  # written behind the trackers' back
    h.bot.ranks.rebuild(G)
    await h.bot.ranks.wait_ready(G)
    rec = await emu.command(ADA, "rewards add", {"role": VIP, "metric": "messages", "period": "season",
                                                 "reach": 1})
    assert rec.text().startswith(f"Rule `{rec.id}` added"), rec.text()
    await h.settle()
    guild = emu.guild(G)
    assert sorted(m.id for m in guild.members.values() if VIP in m.roles) == sorted(crowd)
    assert await h.db.reward_log.count_documents({}) == 0  # they all qualify in Spring

    h.clock.advance(24 * 3600)  # 2026-03-11
    await messages(h, BOB, 1)
    emu.fail("DELETE", rf"/guilds/{G}/members/\d+/roles/{VIP}", status=429, retry_after=0.3, times=2)
    summer = await emu.command(ADA, "season start", {"name": "Summer"})
    assert summer.text().startswith("Season **Summer** counts from 00:00 today"), summer.text()
    await drained_5000_changes(h)
