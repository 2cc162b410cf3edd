"""Redaction: secrets never reach a log, a record, the screen or an error (SPEC §3.5)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orbit_ops.redact as redact_module
from orbit_ops.redact import (
    MASK,
    clear_registered_secrets,
    is_secret_name,
    redact,
    redact_json,
    register_env_secrets,
    register_secret,
    register_secret_names,
    register_secrets,
    shown_env_value,
)

ACCOUNT_KEY = "Zm9vYmFyYmF6cXV4" * 5 + "Zm9v+/" + "=="  # 88 characters, like a storage account key
JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL21hbmFnZW1lbnQifQ.c2lnbmF0dXJlLXBhcnQ"


@pytest.fixture(autouse=True)
def _no_registered_secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("ORBIT_STORAGE_ACCOUNT_KEY", "ORBIT_AZURE_ACCESS_TOKEN", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    clear_registered_secrets()
    yield
    clear_registered_secrets()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # SAS URLs: scheme, host and path stay; the query goes.
        (
            "PUT https://orbitacr.blob.core.windows.net/src/ctx.tar.gz?sv=2022-11-02&se=2030-01-01&sp=cw&sig=a%2Bb%3D",
            "PUT https://orbitacr.blob.core.windows.net/src/ctx.tar.gz?<redacted>",
        ),
        (
            "log at https://h.example/logs/run-1.log?sig=x, retrying",
            "log at https://h.example/logs/run-1.log?<redacted>, retrying",
        ),
        ("(see https://h.example/a?b=c).", "(see https://h.example/a?<redacted>)."),
        (
            '{"uploadUrl": "https://a.blob.core.windows.net/c/b?sv=1&sig=z", "ok": 1}',
            '{"uploadUrl": "https://a.blob.core.windows.net/c/b?<redacted>", "ok": 1}',
        ),
        (
            "http://127.0.0.1:10000/devstoreaccount1/c?comp=list&sig=q",
            "http://127.0.0.1:10000/devstoreaccount1/c?<redacted>",
        ),
        ("https://user:hunter22@registry.example/v2/", "https://user:***@registry.example/v2/"),
        # Pairs outside URLs: a bare SAS token, connection strings, URL-encoded forms.
        (
            "token ?sv=2021-08-06&ss=b&srt=o&sp=r&sig=AbC%2Fd%3D&se=x",
            "token ?sv=2021-08-06&ss=b&srt=o&sp=r&sig=***&se=x",
        ),
        (
            "DefaultEndpointsProtocol=https;AccountName=orbitfiles;AccountKey=ab/cd+ef==;EndpointSuffix=core.windows.net",
            "DefaultEndpointsProtocol=https;AccountName=orbitfiles;AccountKey=***;EndpointSuffix=core.windows.net",
        ),
        (
            "FileEndpoint=https://f.file.core.windows.net/;SharedAccessSignature=sv=2020&ss=f&sig=Q%3D;X=1",
            "FileEndpoint=https://f.file.core.windows.net/;SharedAccessSignature=***;X=1",
        ),
        (
            "Endpoint=sb://ns/;SharedAccessKeyName=root;SharedAccessKey=k3y=",
            "Endpoint=sb://ns/;SharedAccessKeyName=root;SharedAccessKey=***",
        ),
        (
            "nested https%3A%2F%2Fh%2Fp%3Fsv%3D1%26sig%3DabcDEF123",
            "nested https%3A%2F%2Fh%2Fp%3Fsv%3D1%26sig%3D***",
        ),
        ("SIG=UPPER Sig=Mixed", "SIG=*** Sig=***"),
        (
            "password=hunter2 pwd=x1 client_secret=abc ORBIT_AZURE_ACCESS_TOKEN=eyJ0",
            "password=*** pwd=*** client_secret=*** ORBIT_AZURE_ACCESS_TOKEN=***",
        ),
        ('{"password": "with \\"escaped\\" quote", "name": "acme"}', '{"password": "***", "name": "acme"}'),
        ("{'accessToken':'abc'}", "{'accessToken':'***'}"),
        # Headers and tokens.
        ("Authorization: Bearer " + JWT, "Authorization: ***"),
        ("sent Bearer abc.def-123_456 to ARM", "sent Bearer *** to ARM"),
        ("Authorization: SharedKey orbitfiles:c2lnbmF0dXJl", "Authorization: ***"),
        ("x-ms-encryption-key: abc", "x-ms-encryption-key: ***"),
        ("x-ms-copy-source-authorization=Bearer abcdefgh1", "x-ms-copy-source-authorization=***"),
        ("token " + JWT + " expired", "token *** expired"),
        (
            "az storage share create --account-key " + ACCOUNT_KEY + " --name x",
            "az storage share create --account-key *** --name x",
        ),
        ("--sas-token='sv=1&sig=2' --use-token --verbose", "--sas-token=*** --use-token --verbose"),
        ("key " + ACCOUNT_KEY + " in prose", "key *** in prose"),
        ("token: abc123def", "token: ***"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----\nafter",
            "-----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY-----\nafter",
        ),
    ],
)
def test_secret_shapes_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "image orbitacr.azurecr.io/agent:2.1.0 built from agent/v2.1.0",
        "digest sha256:" + "0123456789abcdef" * 4,
        "commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        "roll agent@2.1.0-rc.1+build.5 to 12 solutions",
        "https://management.azure.com/subscriptions/0000/resourceGroups/orbit-prod",
        "design=ok max_tokens=5 signatures=3",
        "invalid token: expired",
        "token: connection-refused",
        "Bearer token missing",
        "what? nothing here?",
        "app agent-3fa2b1c9d0e4 mounts 3fa2b1c9d0e4-cust-rw at /repo",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_registered_secret_is_masked_exactly_and_in_its_encoded_forms() -> None:
    secret = "p+ss/w0rd=="
    register_secret(secret)
    assert redact(f"key {secret}!") == "key ***!"
    assert redact("url-encoded p%2Bss%2Fw0rd%3D%3D here") == "url-encoded *** here"
    assert redact("form-encoded p%2Bss%2Fw0rd%3D%3D") == "form-encoded ***"
    assert secret not in redact(f"{secret}{secret}")


def test_json_escaped_registered_secret_is_masked() -> None:
    register_secret('a"quoted\\secret')
    assert redact('{"v": "a\\"quoted\\\\secret"}') == '{"v": "***"}'


def test_longest_registered_secret_wins_when_one_contains_another() -> None:
    register_secret("abcd1234")
    register_secret("abcd1234efgh5678")
    assert redact("x abcd1234efgh5678 y abcd1234 z") == "x *** y *** z"


@pytest.mark.parametrize("value", [None, "", "   ", "abc"])
def test_blank_or_tiny_values_are_not_registered(value: str | None) -> None:
    register_secret(value)
    assert redact("abc and a b c stay") == "abc and a b c stay"


def test_credential_environment_variables_are_masked_without_registering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORBIT_STORAGE_ACCOUNT_KEY", "s3cr3t-storage-key")
    assert redact("used s3cr3t-storage-key to mount") == "used *** to mount"


def test_clearing_forgets_registered_secrets() -> None:
    register_secret("forget-me-1")
    clear_registered_secrets()
    assert redact("forget-me-1") == "forget-me-1"


def test_redact_json_masks_strings_and_credential_keys() -> None:
    register_secret("runtime-secret")
    value = {
        "image": "orbitacr.azurecr.io/agent:2.1.0",
        "log_url": "https://a.blob.core.windows.net/l/run.log?sig=x",
        "accountKey": "plain-looking",
        "nested": [{"note": "has runtime-secret inside"}, 3, None, True],
        "count": 2,
    }
    assert redact_json(value) == {
        "image": "orbitacr.azurecr.io/agent:2.1.0",
        "log_url": "https://a.blob.core.windows.net/l/run.log?<redacted>",
        "accountKey": MASK,
        "nested": [{"note": "has *** inside"}, 3, None, True],
        "count": 2,
    }


_BASE64 = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", min_size=8, max_size=40
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


@settings(max_examples=200, deadline=None)
@given(_BASE64, st.text(max_size=60), st.text(max_size=60))
def test_a_registered_secret_never_survives_whatever_surrounds_it(
    secret: str, before: str, after: str
) -> None:
    clear_registered_secrets()
    register_secret(secret)
    assert secret not in redact(before + secret + after)


@pytest.mark.parametrize("text", ["acme-corp-customer", "f13fa37ca5ae-cust-rw", "orbit-f13fa37ca5ae", "1.10.0", "none"])
def test_names_and_ids_pass_unchanged(text: str) -> None:
    assert redact(text) == text
    assert redact_json({"name": text, "items": [text]}) == {"name": text, "items": [text]}


def test_a_registered_secret_is_masked_even_inside_a_plain_name() -> None:
    register_secret("hunter2secret")

    assert redact("acme-hunter2secret-customer") == f"acme-{MASK}-customer"
    assert redact_json({"name": "hunter2secret"}) == {"name": MASK}


def test_a_repeated_line_is_masked_every_time_also_after_a_secret_is_registered() -> None:
    line = "mount with key s3cr3t-value-1234 refused"
    assert redact(line) == line
    register_secret("s3cr3t-value-1234")
    assert redact(line) == f"mount with key {MASK} refused"
    clear_registered_secrets()
    assert redact(line) == line


# --- secrets by name (decision 0031) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["DB_PASSWORD", "PASSWORD", "MYSQL_PASSWD", "DBPASSWORD", "API_TOKEN", "GITHUB_TOKEN", "AUTHTOKEN", "API_KEY",
     "ACCOUNT_KEY", "STORAGE_ACCOUNT_KEY", "apiKey", "APIKEY", "ACCESSKEY", "SSH_PRIVATE_KEY", "CLIENT_SECRET",
     "clientSecret", "AZURE_CLIENT_SECRET", "SECRET", "SERVICE_CREDENTIALS", "GCP_CREDENTIAL", "DB_PWD",
     "STORAGE_CONNECTION_STRING", "ConnectionString", "BLOB_SAS", "SAS_URL", "UPSTREAM_AUTHORIZATION",
     "PASSPHRASE", "KEY", "DB_PASSWORD_2", "WEBHOOK_SIG", "GITHUB_PAT", "DB_PASS", "SMTP_PASS", "ADMIN_PW"],
)
def test_names_that_mark_a_secret(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    ["LOG_LEVEL", "PUBLIC_BASE_URL", "MONKEY", "KEYCLOAK_URL", "KEY_VAULT_URL", "KEYBOARD_LAYOUT", "TURNKEY_MODE",
     "AUTH_MODE", "OAUTH_ISSUER_URL", "PATH", "METHODOLOGY_PATH", "N", "SASQUATCH", "PRIVATELY", "HOST",
     "PASSTHROUGH_MODE", "BYPASS_CACHE", "COMPASS_URL", "PWA_ENABLED"],
)
def test_names_that_do_not(name: str) -> None:
    assert not is_secret_name(name)


def test_the_workspace_extends_the_names_with_patterns_in_any_case() -> None:
    assert not is_secret_name("STRIPE_LIVE")
    register_secret_names(["stripe_*", "PIN"])
    assert is_secret_name("STRIPE_LIVE") and is_secret_name("pin") and not is_secret_name("PINNED")
    clear_registered_secrets()
    assert not is_secret_name("STRIPE_LIVE")


def test_values_of_secret_named_variables_are_masked_wherever_they_appear() -> None:
    register_env_secrets({"orbit": {"DB_PASSWORD": "hunter3-rotated", "LOG_LEVEL": "debug-verbose"},
                          "agent": {"API_TOKEN": "tok-SEKRIT-777"}})
    line = "template refused: DB=hunter3-rotated t=tok-SEKRIT-777 level debug-verbose (tok-SEKRIT-777%21)"
    assert redact(line) == "template refused: DB=*** t=*** level debug-verbose (***%21)"
    assert redact_json({"DB_PASSWORD": "abc", "LOG_LEVEL": "abc", "key": "abc"}) == {
        "DB_PASSWORD": MASK, "LOG_LEVEL": "abc", "key": "abc"}  # upper-case env names only: 'key' is a field


def test_flags_and_short_numbers_under_secret_names_are_not_masked_in_every_log() -> None:
    register_env_secrets({"agent": {"TOKEN_AUTH_ENABLED": "true", "TOKEN_TTL": "3600", "DB_PIN_PASSWORD": "12345678"}})
    assert redact("enabled: true, ttl 3600, pin 12345678") == "enabled: true, ttl 3600, pin ***"
    assert shown_env_value("TOKEN_TTL", "3600") == MASK  # still hidden where the variable is shown


def test_a_shown_env_value_is_masked_by_name_whatever_its_length() -> None:
    assert shown_env_value("API_KEY", "abc") == MASK
    assert shown_env_value("API_KEY", "") == ""
    assert shown_env_value("LOG_LEVEL", "debug") == "debug"
    assert shown_env_value("BLOB_URL", "https://a.example/c?sig=x") == "https://a.example/c?<redacted>"


@settings(max_examples=50, deadline=None)
@given(st.lists(_BASE64, min_size=300, max_size=400, unique=True), st.text(max_size=80), st.integers(0, 299))
def test_many_registered_secrets_mask_as_one_alternation_does(secrets: list[str], noise: str, pick: int) -> None:
    # Past a few hundred forms the pattern is a prefix tree: it must mask exactly what the plain alternation does.
    clear_registered_secrets()
    register_secrets(secrets)
    text = f"{noise}{secrets[pick]}{noise}{secrets[pick][:-1]}"
    plain = re.compile("|".join(re.escape(s) for s in sorted(redact_module._registered(), key=lambda s: (-len(s), s))))
    assert redact_module._secret_pattern(redact_module._registered()).pattern != plain.pattern
    assert redact(text) == redact_module._redact(plain.sub(MASK, text), frozenset())
    assert secrets[pick] not in redact(text)


def test_a_fleet_of_registered_secrets_redacts_a_line_in_well_under_a_millisecond() -> None:
    import secrets as random

    register_secrets(random.token_urlsafe(12) for _ in range(10_000))
    redact("warm up: compiles the pattern once")
    line = "12:00:00 [customer-0001] update app agent-abcdef123456: image 1.2.0 → 1.3.0; env LOG_LEVEL a → b"
    started = time.perf_counter()
    for index in range(200):
        redact(f"{line} {index}")
    assert (time.perf_counter() - started) / 200 < 0.002  # one alternation of 40,000 forms: ~20 ms a line
