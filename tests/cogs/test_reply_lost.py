"""An answer that cannot reach Discord (the connection dropped, or the bot's HTTP session closed at
shutdown while a command ran; campaign long run, seed 45): one warning line, no traceback, no
"Task exception was never retrieved"."""

from __future__ import annotations

import logging

import pytest

from tests.botharness import Harness

BOB = 102


async def test_a_command_whose_answer_is_cut_off_logs_one_line(tracker: Harness,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    emu = tracker.emu
    emu.fail("POST", r"/interactions/\d+/[^/]+/callback", status=0, times=1)
    with caplog.at_level(logging.WARNING):
        with pytest.raises(TimeoutError):
            await emu.command(BOB, "ud", {}, timeout=3)
        answered = await emu.command(BOB, "ud", {})  # the next one is answered as usual
    assert answered.embed is not None
    lines = [r for r in caplog.records if "did not reach Discord" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING and lines[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
