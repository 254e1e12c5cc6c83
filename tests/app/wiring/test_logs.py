import json
import logging

import pytest
from pydantic import SecretStr

from app.wiring.logs import Redactor, secrets_of, setup_logging, uri_secrets
from app.wiring.settings import SettingsError, load_settings


def _capture(capsys, fmt, secrets):
    setup_logging("INFO", fmt, secrets)
    log = logging.getLogger("tests.logs")
    uri = "mongodb://root:pa55word@db:27017/?authSource=admin"
    log.info("connecting to %s with token %s", uri, "tok.en.value")
    try:
        raise RuntimeError("failed for mongodb://root:pa55word@db:27017/")
    except RuntimeError:
        log.exception("boom tok.en.value")
    return capsys.readouterr().err


def test_text_logs_redact_credentials_and_token(capsys):
    out = _capture(capsys, "text", ["tok.en.value"])
    assert "pa55word" not in out
    assert "tok.en.value" not in out
    assert "mongodb://***@db:27017" in out


def test_json_logs_are_one_object_per_line(capsys):
    out = _capture(capsys, "json", ["tok.en.value"])
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert lines[0]["levelname"] == "INFO"
    assert lines[0]["name"] == "tests.logs"
    assert "pa55word" not in out and "tok.en.value" not in out


def test_filter_redacts_without_known_secret():
    assert Redactor().redact("mongodb+srv://u:p@h/x") == "mongodb+srv://***@h/x"


# ---- secrets never reach a log line or an error text a member sees ---------------------------

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789"
URI = "mongodb://tracker:s3cr%40t%2Fpw@mongo:27017/tracker?replicaSet=rs0&authSource=tracker"


class _Settings:
    discord_token = SecretStr(TOKEN)
    mongodb_uri = SecretStr(URI)


def test_secrets_of_settings_include_the_password_quoted_and_decoded():
    found = secrets_of(_Settings())
    assert TOKEN in found and URI in found
    assert "s3cr%40t%2Fpw" in found and "s3cr@t/pw" in found
    assert uri_secrets("mongodb://h:27017/x") == ["mongodb://h:27017/x"]  # no password, nothing more


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_uri_with_credentials_and_the_token_in_a_log_line_and_a_traceback(capsys, fmt):
    setup_logging("INFO", fmt, secrets_of(_Settings()))
    log = logging.getLogger("tests.logs.secrets")
    log.info("connecting to %s as %s", URI, TOKEN)
    log.warning("auth failed for password s3cr@t/pw (raw s3cr%40t%2Fpw)")
    try:
        raise ConnectionError(f"could not reach {URI} with token {TOKEN}")
    except ConnectionError:
        log.exception("startup failed")
    out = capsys.readouterr().err
    for secret in (TOKEN, "s3cr%40t%2Fpw", "s3cr@t/pw", "s3cr"):
        assert secret not in out, (secret, out)
    assert out.count("***") >= 5
    assert "ConnectionError" in out  # the traceback itself is kept


def test_token_shaped_strings_and_interaction_tokens_are_redacted_without_being_configured():
    redactor = Redactor()
    url = "/api/v10/interactions/123/aW50ZXJhY3Rpb24abcdefghijklmnop/callback"
    text = redactor.redact(f"token {TOKEN}; POST {url}")
    assert TOKEN not in text and "aW50ZXJhY3Rpb24abcdefghijklmnop" not in text
    assert "/interactions/123/***/callback" in text


def test_a_bad_uri_setting_error_does_not_echo_the_uri():
    with pytest.raises(SettingsError) as caught:
        load_settings(mongodb_uri="http://tracker:hunter22@mongo/x", _env_file=None)
    assert "hunter22" not in str(caught.value) and "MONGODB_URI" in str(caught.value)


async def test_an_error_shown_to_a_member_is_redacted(make_tracker):
    """/invites-admin debug shows why the live invites could not be read: never the token or the URI."""
    h = await make_tracker(mongodb_uri=URI)
    assert h.bot is not None
    cog = h.bot.get_cog("Invites")

    async def failing_fetch(guild):
        raise RuntimeError(f"fetch via {URI} with {h.settings.discord_token.get_secret_value()} failed")

    cog.tracker.fetch_live = failing_fetch
    rec = await h.emu.command(101, "invites-admin debug")
    text = rec.text()
    assert "could not fetch" in text
    for secret in ("s3cr", "test-token", "tracker:"):
        assert secret not in text, text
    assert "could not fetch: fetch via \\*\\*\\* with \\*\\*\\* failed" in text  # redacted, then escaped


def test_env_file_is_ignored_by_git_and_docker():
    root = __import__("pathlib").Path(__file__).resolve().parents[3]
    assert ".env" in (root / ".gitignore").read_text().split()
    assert ".env" in (root / ".dockerignore").read_text().split()
