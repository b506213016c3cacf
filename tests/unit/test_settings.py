"""Settings: Motorhead's environment names, typed, read once, refused at start with the variable's name."""

from __future__ import annotations

import pytest

from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.errors import ConfigError
from motorhead.settings import Settings, load_settings

MOTORHEAD_VARS = [
    "MOTORHEAD_MAX_WINDOW_SIZE",
    "MOTORHEAD_LONG_TERM_MEMORY",
    "MOTORHEAD_MODEL",
    "PORT",
    "REDIS_URL",
    "OPENAI_API_KEY",
    "MOTORHEAD_REDIS_MODE",
    "MOTORHEAD_KEY_PREFIX",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in MOTORHEAD_VARS:
        monkeypatch.delenv(name, raising=False)


def test_load_settings_given_no_environment_uses_motorhead_defaults() -> None:
    # Given an empty environment / When settings are read
    settings = load_settings()
    # Then Motorhead's defaults apply, with a current small model and port 8080
    assert settings.max_window_size == 12
    assert settings.long_term_memory is False
    assert settings.model == "gpt-4o-mini"
    assert settings.port == 8080
    assert settings.redis_url is None
    assert settings.redis_mode == "auto"


def test_load_settings_given_motorhead_names_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given Motorhead's own variable names
    monkeypatch.setenv("MOTORHEAD_MAX_WINDOW_SIZE", "20")
    monkeypatch.setenv("MOTORHEAD_LONG_TERM_MEMORY", "true")
    monkeypatch.setenv("MOTORHEAD_MODEL", "gpt-4o")
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    # When settings are read
    settings = load_settings()
    # Then each lands in its typed field, and the key is kept secret in reprs
    assert (settings.max_window_size, settings.long_term_memory, settings.model) == (20, True, "gpt-4o")
    assert (settings.port, settings.redis_url) == (9000, "redis://cache:6379/0")
    assert settings.openai_api_key is not None and settings.openai_api_key.get_secret_value() == "sk-test"
    assert "sk-test" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MOTORHEAD_MAX_WINDOW_SIZE", "twelve"),
        ("MOTORHEAD_MAX_WINDOW_SIZE", "1"),
        ("MOTORHEAD_LONG_TERM_MEMORY", "maybe"),
        ("PORT", "70000"),
        ("MOTORHEAD_REDIS_MODE", "sentinel"),
        ("MOTORHEAD_KEY_PREFIX", "has space"),
    ],
)
def test_load_settings_given_invalid_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    # Given one invalid value
    monkeypatch.setenv(name, value)
    # When settings are read / Then start-up is refused, naming the variable
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_redis_connector_given_no_redis_url_fails_naming_it() -> None:
    # Given settings without REDIS_URL (Lambda has no embedded server)
    settings = Settings()
    # When the Redis adapter is built / Then it refuses, naming the variable
    with pytest.raises(ConfigError, match="REDIS_URL"):
        RedisConnector(settings)


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://idp.example.com/.well-known/jwks.json", True),
        ("http://127.0.0.1:8443/jwks.json", True),
        ("http://localhost/jwks.json", True),
        ("http://idp.example.com/.well-known/jwks.json", False),
        ("ftp://idp.example.com/jwks.json", False),
        ("file:///etc/jwks.json", False),
    ],
)
def test_settings_given_jwt_accepts_a_jwks_only_over_https_or_on_this_machine(url: str, accepted: bool) -> None:
    values = {
        "MOTORHEAD_AUTH": "jwt",
        "MOTORHEAD_JWT_ISSUER": "https://idp.example.com/",
        "MOTORHEAD_JWT_AUDIENCE": "motorhead",
        "MOTORHEAD_JWT_JWKS_URL": url,
    }
    if accepted:
        assert Settings(**values).jwt_jwks_url == url  # type: ignore[arg-type]
    else:
        with pytest.raises(ValueError, match="must be https"):
            Settings(**values)  # type: ignore[arg-type]
