import json
import logging

from app.logs import Redactor, setup_logging


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
