"""The README's invite URL asks for exactly the permissions the code uses (`bot_permissions`)."""

from __future__ import annotations

from pathlib import Path

import discord

from app.wiring.discord_endpoints import bot_intents, bot_permissions, invite_url

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_the_permission_number_is_the_sum_of_the_permissions_used() -> None:
    used = discord.Permissions(manage_guild=True, view_audit_log=True, view_channel=True,
                               read_message_history=True, send_messages=True, manage_roles=True)
    assert bot_permissions() == used and bot_permissions().value == 268504224
    assert not bot_permissions().administrator


def test_the_readme_shows_the_url_and_names_each_permission() -> None:
    assert invite_url() in README
    assert "scope=bot+applications.commands" in invite_url()
    labels = {"manage_guild": "Manage Server", "view_audit_log": "View Audit Log",
              "view_channel": "View Channels", "read_message_history": "Read Message History",
              "send_messages": "Send Messages", "manage_roles": "Manage Roles"}
    assert discord.Permissions(**dict.fromkeys(labels, True)) == bot_permissions()
    for label in labels.values():
        assert f"| {label} |" in README, label


def test_the_readme_names_the_privileged_intent_and_not_message_content() -> None:
    assert bot_intents().members and not bot_intents().message_content
    assert "Server Members Intent" in README
