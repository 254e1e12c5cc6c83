"""DISCORD_PROXY reaches discord.py's HTTP client (REST and gateway), credentials as BasicAuth,
and the proxy's password is redacted like the other secrets (issue 18, finding 18)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from app.wiring.bot import TrackerBot
from app.wiring.logs import Redactor, secrets_of
from app.wiring.settings import SettingsError, load_settings


def make_bot(tmp_path: Path, **settings: object) -> TrackerBot:
    loaded = load_settings(_env_file=None, discord_token="x", data_dir=tmp_path, **settings)
    client: AsyncMongoClient = AsyncMongoClient("mongodb://127.0.0.1:9", connect=False)
    return TrackerBot(loaded, client["unused"], "unused")  # never started: no connection made


def test_the_proxy_setting_reaches_discord_http_client(tmp_path: Path) -> None:
    bot = make_bot(tmp_path, discord_proxy="http://proxy.internal:3128")
    assert bot.http.proxy == "http://proxy.internal:3128"
    assert bot.http.proxy_auth is None


def test_credentials_in_the_proxy_url_become_basic_auth(tmp_path: Path) -> None:
    bot = make_bot(tmp_path, discord_proxy="http://ops:s%40cret@[fd00::1]:3128")
    assert bot.http.proxy == "http://[fd00::1]:3128", "no credentials left in the URL aiohttp gets"
    auth = bot.http.proxy_auth
    assert isinstance(auth, aiohttp.BasicAuth) and (auth.login, auth.password) == ("ops", "s@cret")
    redactor = Redactor(secrets_of(bot.settings))
    assert redactor.redact("proxy said s@cret and s%40cret") == "proxy said *** and ***"


def test_without_the_setting_there_is_no_proxy(tmp_path: Path) -> None:
    bot = make_bot(tmp_path, discord_proxy="  ")
    assert bot.settings.discord_proxy is None
    assert bot.http.proxy is None and bot.http.proxy_auth is None


@pytest.mark.parametrize("value", ["proxy.internal:3128", "socks5://proxy:1080", "http:///no-host", "http://h:port"])
def test_a_proxy_that_is_not_an_http_url_is_refused_by_name(value: str) -> None:
    with pytest.raises(SettingsError, match=r"setting DISCORD_PROXY is invalid") as error:
        load_settings(_env_file=None, discord_proxy=value)
    assert value not in str(error.value), "the value (it may hold a password) is not echoed"
