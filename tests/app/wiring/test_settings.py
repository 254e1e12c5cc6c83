import pytest

from app.wiring.settings import SettingsError, load_settings

ENV_NAMES = ("DISCORD_TOKEN", "MONGODB_URI", "MONGODB_DB", "VOICE_FLUSH_SECONDS", "LOG_LEVEL",
             "DISCORD_API_BASE", "DISCORD_GATEWAY_URL", "LOG_FORMAT")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_use_the_embedded_database():
    settings = load_settings()
    assert settings.embedded
    assert settings.voice_flush_seconds == 120
    assert settings.voice_downtime_cap_seconds == 600
    assert settings.mongodb_db == "tracker"
    assert settings.discord_token is None


def test_env_file_is_read(tmp_path):
    (tmp_path / ".env").write_text("DISCORD_TOKEN=abc.def.ghi\nVOICE_FLUSH_SECONDS=30\nLOG_LEVEL=debug\n")
    settings = load_settings()
    assert settings.discord_token.get_secret_value() == "abc.def.ghi"
    assert settings.voice_flush_seconds == 30
    assert settings.log_level == "DEBUG"


def test_token_and_uri_never_show_in_repr(monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "super-secret-token")
    monkeypatch.setenv("MONGODB_URI", "mongodb://app:hunter2@db:27017/")
    settings = load_settings()
    assert "super-secret-token" not in repr(settings)
    assert "hunter2" not in repr(settings)
    assert not settings.embedded


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VOICE_FLUSH_SECONDS", "abc"),
        ("VOICE_FLUSH_SECONDS", "0"),
        ("MONGODB_URI", "http://localhost"),
        ("DISCORD_API_BASE", "ftp://x"),
        ("DISCORD_GATEWAY_URL", "http://x"),
        ("LOG_LEVEL", "LOUD"),
        ("MONGODB_DB", "bad name/with$"),
    ],
)
def test_bad_setting_fails_with_one_line_naming_it(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert name in message
    assert "\n" not in message


def test_blank_optional_urls_are_unset(monkeypatch):
    monkeypatch.setenv("DISCORD_API_BASE", "")
    monkeypatch.setenv("MONGODB_URI", " ")
    settings = load_settings()
    assert settings.discord_api_base is None
    assert settings.embedded
