"""Reading a settings group from the environment: every bad variable named, one line each,
whether the group reads alone or as part of the worker's start-up."""

from __future__ import annotations

import pytest

from providers.chains.budgets import FailoverSettings
from providers.config.settings import LoaderSettings
from providers.env_vars import EnvReader, SettingsError


def test_a_group_names_every_bad_variable_not_only_the_first() -> None:
    with pytest.raises(SettingsError) as error:
        LoaderSettings.from_env(
            {"PROVIDER_CACHE_TTL": "soon", "PROVIDER_TIMEOUT": "-1", "PROVIDER_ENV_FALLBACK": "?"}
        )
    assert error.value.problems == [
        "PROVIDER_ENV_FALLBACK='?' is not a boolean: use true or false",
        "PROVIDER_CACHE_TTL='soon' is not a number",
        "PROVIDER_TIMEOUT='-1' must not be negative",
    ]
    assert str(error.value).splitlines() == error.value.problems


def test_groups_read_through_one_reader_leave_their_problems_to_it() -> None:
    reader = EnvReader({"PROVIDER_CACHE_TTL": "soon", "STT_CONNECT_TIMEOUT": "x"})
    loader = LoaderSettings.from_env(reader)  # no raise: the owner reports
    failover = FailoverSettings.from_env(reader)
    assert loader.cache_ttl == LoaderSettings().cache_ttl  # the default stood in
    assert failover == FailoverSettings()
    assert len(reader.problems) == 2
    with pytest.raises(SettingsError, match="PROVIDER_CACHE_TTL(.|\n)*STT_CONNECT_TIMEOUT"):
        reader.check()
    assert "PROVIDER_CACHE_TTL" in reader.names and "STT_REPLAY_SECONDS" in reader.names


def test_a_key_is_never_validated_so_never_in_a_message() -> None:
    reader = EnvReader({"AICO_INTERNAL_API_KEY": " odd key "})
    key = reader.secret("AICO_INTERNAL_API_KEY")
    assert key is not None and key.get_secret_value() == " odd key "
    reader.check()


@pytest.mark.parametrize("url", ["backend:8080", "ftp://backend", "http://", "http//backend"])
def test_a_backend_url_no_request_can_be_built_from_stops_start_up(url: str) -> None:
    """Else every call would take it for a backend outage and run on the env's keys."""
    with pytest.raises(SettingsError, match="AICO_BACKEND_URL=.*use an http:// or https:// URL"):
        LoaderSettings.from_env({"AICO_BACKEND_URL": url})
    assert LoaderSettings.from_env({"AICO_BACKEND_URL": "http://b:1/x"}).backend_url
