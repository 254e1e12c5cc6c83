"""The emulator refuses an autocomplete answer Discord would refuse (400): more than 25 choices,
a name or string value outside 1-100 characters, or an answer to another kind of interaction."""

from __future__ import annotations

import pytest

from scripts.emulator.constants import InteractionType
from scripts.emulator.interactions import InteractionRecord
from scripts.emulator.rest import ApiError, check_choices


def record(kind: InteractionType) -> InteractionRecord:
    return InteractionRecord(id=1, token="t", type=kind, name="x", user_id=1, guild_id=1, channel_id=1,
                             payload={})


def choices(n: int, name: str = "a", value: str = "a") -> list[dict[str, str]]:
    return [{"name": name, "value": value}] * n


def test_up_to_25_choices_of_1_to_100_characters_are_accepted() -> None:
    check_choices(record(InteractionType.AUTOCOMPLETE), choices(25, "n" * 100, "v" * 100))
    check_choices(record(InteractionType.AUTOCOMPLETE), [])


@pytest.mark.parametrize(("kind", "answer"), [
    (InteractionType.AUTOCOMPLETE, choices(26)),
    (InteractionType.AUTOCOMPLETE, choices(1, name="n" * 101)),
    (InteractionType.AUTOCOMPLETE, choices(1, value="v" * 101)),
    (InteractionType.AUTOCOMPLETE, choices(1, name="")),
    (InteractionType.APPLICATION_COMMAND, choices(1)),
])
def test_what_discord_refuses_is_refused(kind: InteractionType, answer: list[dict[str, str]]) -> None:
    with pytest.raises(ApiError):
        check_choices(record(kind), answer)
