"""Announcement texts: every source, escaped names, and never a mention of a role or everyone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cogs.announcement_text import JoinFacts, allowed_for, join_text, late_batch_text, leave_text
from repositories.guild_settings import DEFAULT_JOIN_TEMPLATE, DEFAULT_LEAVE_TEMPLATE

JOINED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def facts(source: str, **changes) -> JoinFacts:
    base = dict(guild_id=1, member_id=201, member_name="eve", source=source, code="abc", candidates=(),
                inviter_id=101, inviter_name="ada", joined_at=JOINED,
                account_created_at=JOINED - timedelta(days=400), live=True)
    base.update(changes)
    return JoinFacts(**base)


@pytest.mark.parametrize(("source", "changes", "expected"), [
    ("invite", {}, "eve joined; invited by ada (invite, code abc; 7 invites)"),
    ("vanity", {"code": "study", "inviter_id": None, "inviter_name": None},
     "eve joined through the vanity URL (study)."),
    ("unknown", {"code": None, "inviter_id": None, "inviter_name": None},
     "eve joined; the invite they used could not be determined."),
    ("ambiguous", {"code": None, "candidates": ("abc", "bobs"), "inviter_id": None, "inviter_name": None},
     "eve joined through one of these invites: abc or bobs; not counted for anyone."),
    ("downtime", {"live": False},
     "(late) eve joined while the bot was offline; invited by ada (code abc, 7 invites)."),
])
def test_default_join_text_for_every_source(source, changes, expected) -> None:
    assert join_text(DEFAULT_JOIN_TEMPLATE, facts(source, **changes), 7, mention_member=False) == expected


def test_a_custom_template_fills_every_placeholder() -> None:
    template = "{member}|{member_name}|{inviter}|{inviter_name}|{code}|{invites}|{source}|{account_age}"
    text = join_text(template, facts("invite"), 3, mention_member=True)
    assert text == "<@201>|eve|ada|ada|abc|3|invite|13 months"


@pytest.mark.parametrize("name", ["@everyone", "**x**", "<@&123>", "@here"])
def test_names_are_escaped_and_cannot_ping(name: str) -> None:
    text = join_text(DEFAULT_JOIN_TEMPLATE, facts("invite", member_name=name, inviter_name=name), 1, False)
    assert "@everyone" not in text and "@here" not in text and "<@&123>" not in text
    assert "**x**" not in text
    batch = late_batch_text([facts("downtime", member_name=name, live=False)] * 5)
    assert "@everyone" not in batch and "<@&123>" not in batch and "**x**" not in batch
    allowed = allowed_for(None).to_dict()
    assert allowed["parse"] == [] and not allowed.get("users") and not allowed.get("roles")
    assert allowed_for(201).to_dict() == {"parse": [], "users": [201]}


def test_invites_read_with_the_right_plural() -> None:
    assert join_text(DEFAULT_JOIN_TEMPLATE, facts("invite"), 1, mention_member=False) == (
        "eve joined; invited by ada (invite, code abc; 1 invite)")
    assert join_text("{member}: {invites} invites, {{invites}} invites", facts("invite"), 1, False) == (
        "eve: 1 invite, {invites} invites")
    assert leave_text(DEFAULT_LEAVE_TEMPLATE, facts("invite"), 201, "eve", 1) == (
        "eve left; they were invited by ada (1 invite)")


def test_leave_texts() -> None:
    assert leave_text(DEFAULT_LEAVE_TEMPLATE, facts("invite"), 201, "eve", 4) == (
        "eve left; they were invited by ada (4 invites)")
    assert leave_text(DEFAULT_LEAVE_TEMPLATE, None, 201, "eve", 0) == "eve left."
