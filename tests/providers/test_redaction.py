"""The one redaction every output goes through: known secrets wherever they appear, URL
credentials, credential pairs, failed-call bodies, nested option keys; and fingerprints
that only the salt's holder can reproduce."""

from __future__ import annotations

from pydantic import SecretStr

from providers import redaction
from providers.catalogue import provider_config
from providers.redaction import (
    MASK,
    SecretRegistry,
    configure_fingerprints,
    fingerprint,
    redact,
    redact_text,
    register,
    safe_url,
    safe_urls,
)
from providers.types import ProviderKind

CANARY = "canary-REDACTION-7f3a9c1e"


def test_a_registered_secret_is_masked_wherever_it_appears() -> None:
    register(CANARY)
    text = f'{{"detail": "bad key {CANARY[:-1]}{CANARY[-1]}", "echo": "x{CANARY}y"}}'
    assert CANARY not in redact_text(text)
    assert redact_text(text).count(MASK) == 2


def test_short_values_are_not_registered() -> None:
    registry = SecretRegistry()
    registry.register("secret", SecretStr("1234"), None, "")
    assert registry.mask("the secret is 1234") == "the secret is 1234"


def test_url_credentials_are_masked() -> None:
    text = redact_text(
        "calling https://user:hunter2-pass@api.test/v1?api_key=abc123&model=x&token=t0k3n"
    )
    assert "hunter2-pass" not in text and "abc123" not in text and "t0k3n" not in text
    assert "model=x" in text and "api.test/v1" in text
    assert safe_url("https://u:p@api.test:8443/v1/models?key=k#frag") == (
        "https://api.test:8443/v1/models"
    )
    assert safe_urls("tts/openai@http://u:pw@127.0.0.1:9/v1?key=zz") == (
        "tts/openai@http://127.0.0.1:9/v1"
    )


def test_credential_pairs_and_failed_call_bodies_are_masked() -> None:
    text = redact_text(
        'message=\'bad\', status_code=401, request_id=None, body={"detail": "sk-unknown-123"}'
    )
    assert "sk-unknown-123" not in text and "status_code=401" in text
    headers = redact_text('{"xi-api-key": "unknownkey99", "Authorization": "Bearer abcdefgh123"}')
    assert "unknownkey99" not in headers and "abcdefgh123" not in headers
    # words after a credential's name are not a credential
    assert redact_text("needs secret 'apiKey': set DEEPGRAM_API_KEY") == (
        "needs secret 'apiKey': set DEEPGRAM_API_KEY"
    )


def test_nested_option_keys_are_masked_and_counts_are_not() -> None:
    value = {
        "model": "m",
        "headers": {"X-API-Key": "k-nested-1234"},
        "list": [{"password": "p"}],
        "inputTokens": 12,
        "keywords": ["hours"],
    }
    assert redact(value) == {
        "model": "m",
        "headers": {"X-API-Key": MASK},
        "list": [{"password": MASK}],
        "inputTokens": 12,
        "keywords": ["hours"],
    }


def test_a_config_registers_its_secrets_and_secret_options_as_it_is_parsed() -> None:
    key, nested = "sk-parsed-CONFIG-11111", "nested-OPTION-22222"
    provider_config(
        provider="openai",
        kind=ProviderKind.LLM,
        options={"extraHeaders": {"x-api-key": nested}},
        secrets={"apiKey": key},
    )
    assert redaction.registered([key, nested]) == [key, nested]
    assert redact_text(f"{key} {nested}") == f"{MASK} {MASK}"


def test_a_fingerprint_differs_across_salts() -> None:
    try:
        configure_fingerprints("salt-one")
        first = fingerprint("sk-same-key")
        assert fingerprint("sk-same-key") == first  # stable within a worker
        configure_fingerprints(SecretStr("salt-two"))
        assert fingerprint("sk-same-key") != first
        import hashlib

        assert first != hashlib.sha256(b"sk-same-key").hexdigest()[:16]  # not the bare hash
    finally:
        configure_fingerprints(redaction.new_salt())


def test_a_shortened_key_a_provider_echoes_is_masked() -> None:
    text = redact_text("Incorrect API key provided: sk-proj-ab12********************wxyz. See")
    assert "wxyz" not in text and "ab12" not in text and text.endswith(". See")
    assert "sk-ab...yz9" not in redact_text("key sk-ab...yz9 rejected")
    assert redact_text("loading... done") == "loading... done"
