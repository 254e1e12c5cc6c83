"""The demo prints plain text: Discord's mention, timestamp and markdown marks turned into words."""

from scripts.scenario.demo import _ud_text, plain

NAMES = {"123456789012345678": "ada"}


def test_markup_becomes_plain_text() -> None:
    text = (r"<@123456789012345678> · all time, **2 invites** (3 joins), code `abc`, since <t:1773144000:R>"
            r", by <@!123456789012345678>, a\_name, <@999999999999999999>")
    assert plain(text, NAMES) == ("@ada · all time, 2 invites (3 joins), code abc, since 2026-03-10 12:00 UTC"
                                  ", by @ada, a_name, @unknown member")


def test_the_ud_summary_has_no_discord_markup() -> None:
    report = {
        "members": [{"discord_id": "123456789012345678", "name": "ada"}],
        "commands": [{"name": "ud", "embeds": [{
            "title": "Activity of ada", "description": "<@123456789012345678> · all time",
            "fields": [{"name": "Voice", "value": "29s"},
                       {"name": "Streak", "value": "**2 days** (best 2 days)\nNot active yet today"},
                       {"name": "Invites", "value": "**1 invite** (1 join)"}],
        }]}],
    }
    assert _ud_text(report) == ("Activity of ada\n  @ada · all time\n  Voice: 29s\n"
                                "  Streak: 2 days (best 2 days)\n    Not active yet today\n"
                                "  Invites: 1 invite (1 join)")
