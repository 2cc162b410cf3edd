"""Masking of secrets in text before it is stored, shown or raised.

Every log line, error message and result of an operation passes through ``redact`` before it is
written to ``.orbit/`` or yielded to a front end (SPEC §3.5). Two kinds of masking combine:

- values the process knows are secret (registered with ``register_secret``, plus the credential
  environment variables in ``SECRET_ENV_VARS``) are masked wherever they occur, also URL-encoded;
- shapes that carry secrets are masked without knowing the value: URL query strings (SAS tokens
  live there), ``sig=``/``AccountKey=``/``SharedAccessSignature=``/``password=`` style pairs,
  ``Authorization``/``x-ms-*`` credential headers, ``Bearer`` tokens, JWTs, storage account keys
  and PEM private keys.

Masking errs on the side of hiding too much: an operator can re-run with more context, but a
leaked key must be rotated. ``redact`` is idempotent, so text may pass through it more than once.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
QUERY_MASK = "?<redacted>"
MIN_SECRET_LENGTH = 4
SECRET_ENV_VARS = ("ORBIT_STORAGE_ACCOUNT_KEY", "ORBIT_AZURE_ACCESS_TOKEN", "AZURE_CLIENT_SECRET")

# Key names whose value is a credential. A key must end with one of these words (``max_tokens`` is
# not a token, ``sas_token`` is); ``sig`` and ``pwd`` only count as whole keys.
_KEY = (
    r"(?:[A-Za-z0-9_.-]*?(?:password|passwd|passphrase|secret|token|api[_-]?key|account[_-]?key|access[_-]?key"
    r"|signature|credentials?|authorization)"
    r"|sig|pwd|x-ms-[A-Za-z0-9-]*?(?:key|sas))"
)
_SCHEME = r"(?:(?:Bearer|Basic|Digest|SharedKey|SharedKeyLite|SharedAccessSignature)\s+)"

_PEM = re.compile(r"(-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----).*?(-----END \2PRIVATE KEY-----|\Z)", re.DOTALL)
# A connection-string SAS runs to the next ';' and contains '&' and '='.
_SAS_IN_CONNECTION_STRING = re.compile(r"(?i)(\bSharedAccessSignature\s*=\s*)[^\s;\"'<>]+")
_URL_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@?#\"'<>]+:)[^\s/@?#\"'<>]+(@)")
# Keep scheme, host and path; the query (where SAS tokens live) goes. Trailing sentence punctuation
# is left outside the URL.
_URL_QUERY = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s?#\"'<>`]*)\?[^\s\"'<>`]*[^\s\"'<>`.,;:!)\]}]")
_FLAG = re.compile(
    r"(?i)(?<![\w-])(--[A-Za-z0-9-]*?(?:password|secret|token|key|sas|signature|credentials?))"
    r"(\s+|=)(?!-)(?:\"[^\"]*\"|'[^']*'|[^\s\"']+)"
)
_PAIR = re.compile(
    # A key starts a word, or follows a URL-encoded '&' or '?' (%26, %3F).
    r"(?i)(?P<kq>[\"']?)(?:(?<![A-Za-z0-9_.-])|(?<=%26)|(?<=%3F))(?P<key>" + _KEY + r")(?P=kq)"
    r"(?P<sep>\s*(?:=|:|%3D)\s*)"
    r"(?:(?P<vq>[\"'])(?P<qval>(?:\\.|(?!(?P=vq)).)*)(?P=vq)"
    r"|(?P<val>" + _SCHEME + r"?[^\s&;,\"'<>]+))"
)
_BEARER = re.compile(r"(?i)\b(Bearer\s+)(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
# A storage account key: 64 random bytes in base64 (88 characters ending in '==').
_ACCOUNT_KEY = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])")
_SENSITIVE_KEY = re.compile(r"(?i)^" + _KEY + r"$")
# Text made only of these characters cannot hold any shape above (each needs an upper-case letter,
# whitespace, or one of ':', '=', '%', '/', '+'): names, ids and states, most of a sweep's result.
_PLAIN = re.compile(r"[a-z0-9_.-]*")
_CACHED_LENGTH = 256  # shorter texts are remembered: a sweep logs the same lines for every solution

_lock = threading.Lock()
_registered: frozenset[str] = frozenset()


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and its URL- and JSON-escaped forms) in everything redacted from now on.

    Values shorter than ``MIN_SECRET_LENGTH`` are ignored: masking them would blank ordinary
    words, and such a value protects nothing. ``None`` and blank values are ignored too, so an
    unset environment variable can be passed straight in.
    """
    global _registered
    if value is None or len(value.strip()) < MIN_SECRET_LENGTH:
        return
    with _lock:
        _registered = _registered | _variants(value)


def clear_registered_secrets() -> None:
    """Forget every registered secret (for tests, and processes that rotate credentials)."""
    global _registered
    with _lock:
        _registered = frozenset()


def redact(text: str) -> str:
    """``text`` with every known secret and secret-shaped value masked."""
    if not text:
        return text
    secrets = _registered | _env_secrets()
    if len(text) <= _CACHED_LENGTH:
        return _redact_short(text, secrets)
    return _redact(text, secrets)


@functools.lru_cache(maxsize=4096)
def _redact_short(text: str, secrets: frozenset[str]) -> str:
    return _redact(text, secrets)


def _redact(text: str, secrets: frozenset[str]) -> str:
    if secrets:
        text = _secret_pattern(secrets).sub(MASK, text)
    if _PLAIN.fullmatch(text):
        return text
    text = _PEM.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
    text = _SAS_IN_CONNECTION_STRING.sub(rf"\g<1>{MASK}", text)
    text = _URL_USERINFO.sub(rf"\g<1>{MASK}\g<2>", text)
    text = _URL_QUERY.sub(rf"\g<1>{QUERY_MASK}", text)
    text = _FLAG.sub(rf"\g<1>\g<2>{MASK}", text)
    text = _PAIR.sub(_mask_pair, text)
    text = _BEARER.sub(rf"\g<1>{MASK}", text)
    text = _JWT.sub(MASK, text)
    return _ACCOUNT_KEY.sub(MASK, text)


def redact_json(value: Any) -> Any:
    """A copy of a JSON-like value with every string redacted.

    A string under a credential-named key (``password``, ``accountKey``, ``sas_token``…) is
    masked whole, whatever it looks like. The secrets are looked up once per call and each distinct
    string is redacted once (a sweep's result repeats the same words thousands of times).
    """
    secrets = _registered | _env_secrets()
    seen: dict[str, str] = {}
    sensitive: dict[str, bool] = {}

    def text(item: str) -> str:
        done = seen.get(item)
        if done is None:
            done = seen[item] = _redact(item, secrets) if item else item
        return done

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return text(item)
        if isinstance(item, dict):
            copy: dict[str, Any] = {}
            for key, inner in item.items():
                name = key if type(key) is str else str(key)
                if isinstance(inner, str):
                    masked = sensitive.get(name)
                    if masked is None:
                        masked = sensitive[name] = _SENSITIVE_KEY.match(name) is not None
                    copy[text(name)] = MASK if masked and inner else text(inner)
                else:
                    copy[text(name)] = walk(inner)
            return copy
        if isinstance(item, list | tuple):
            return [walk(inner) for inner in item]
        return item

    return walk(value)


def _mask_pair(match: re.Match[str]) -> str:
    kq, key, sep = match.group("kq"), match.group("key"), match.group("sep")
    if match.group("vq") is not None:
        quote_char = match.group("vq")
        return f"{kq}{key}{kq}{sep}{quote_char}{MASK}{quote_char}"
    value = match.group("val")
    # "token: expired" is prose; "token: abc123" is a credential. '=' pairs and credential headers
    # are always masked.
    header = key.lower().startswith("x-ms-") or key.lower().endswith("authorization")
    if ":" in sep and not kq and not header and not _looks_like_credential(value):
        return match.group(0)
    return f"{kq}{key}{kq}{sep}{MASK}"


def _looks_like_credential(value: str) -> bool:
    if value == MASK or re.match(_SCHEME, value, re.IGNORECASE):
        return True
    return len(value) >= 6 and (any(ch.isdigit() for ch in value) or len(value) >= 20)


def _variants(value: str) -> frozenset[str]:
    forms = {value, quote(value, safe=""), quote_plus(value, safe=""), json.dumps(value)[1:-1]}
    return frozenset(form for form in forms if len(form) >= MIN_SECRET_LENGTH)


def _env_secrets() -> frozenset[str]:
    # Read on every call (a variable may be set later); the escaped forms are worked out once per value.
    return _env_variants(tuple(os.environ.get(name) for name in SECRET_ENV_VARS))


@functools.lru_cache(maxsize=16)
def _env_variants(values: tuple[str | None, ...]) -> frozenset[str]:
    found: set[str] = set()
    for value in values:
        if value is not None and len(value.strip()) >= MIN_SECRET_LENGTH:
            found |= _variants(value)
    return frozenset(found)


@functools.lru_cache(maxsize=16)
def _secret_pattern(secrets: frozenset[str]) -> re.Pattern[str]:
    # Longest first, so a secret that contains another is masked whole.
    return re.compile("|".join(re.escape(secret) for secret in _longest_first(secrets)))


def _longest_first(values: Iterable[str]) -> list[str]:
    return sorted(values, key=lambda v: (-len(v), v))
