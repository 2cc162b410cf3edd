"""Masking of secrets in text before it is stored, shown or raised.

Every log line, error message and result of an operation passes through ``redact`` before it is
written to ``.orbit/`` or yielded to a front end (SPEC §3.5). Two kinds of masking combine:

- values the process knows are secret (registered with ``register_secret``, plus the credential
  environment variables in ``SECRET_ENV_VARS``, plus the value of every solution env variable whose
  *name* marks a secret, registered when solutions load: see ``is_secret_name``) are masked wherever
  they occur, also URL-encoded;
- shapes that carry secrets are masked without knowing the value: URL query strings (SAS tokens
  live there), ``sig=``/``AccountKey=``/``SharedAccessSignature=``/``password=`` style pairs,
  ``Authorization``/``x-ms-*`` credential headers, ``Bearer`` tokens, JWTs, storage account keys
  and PEM private keys.

Masking errs on the side of hiding too much: an operator can re-run with more context, but a
leaked key must be rotated. ``redact`` is idempotent, so text may pass through it more than once.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
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

# Words of an environment variable's name that mark its value as a secret (decision 0031). A name is split
# into words at '_' and at camelCase humps; ``KEY`` counts only as a whole word (``API_KEY``, ``apiKey``,
# not ``MONKEY`` or ``KEYCLOAK_URL``) and not in ``KEY_VAULT`` (the vault's address); the words of
# _SECRET_PARTS also count inside a word (``DBPASSWORD``, ``CLIENTSECRET``, ``AUTHTOKEN``).
_SECRET_WORDS = frozenset({
    "PASSWORD", "PASSWORDS", "PASSWD", "PASSPHRASE", "PWD", "SECRET", "SECRETS", "TOKEN", "KEY", "APIKEY",
    "CREDENTIAL", "CREDENTIALS", "CREDS", "PRIVATE", "SAS", "SIG", "SIGNATURE", "AUTHORIZATION", "CONNSTR",
    "CONNECTIONSTRING", "PAT", "PASS", "PW",  # DB_PASS, SMTP_PASS, ADMIN_PW: as common as the long forms
})
_SECRET_PARTS = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "CREDENTIAL", "APIKEY", "ACCESSKEY",
                 "ACCOUNTKEY", "PRIVATEKEY", "SECRETKEY", "MASTERKEY", "SIGNINGKEY")
_NAME_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_ORDINARY_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null", "enabled", "disabled"})
# Above this many registered forms, one alternation of all of them costs milliseconds a line: a trie-shaped
# pattern (one branch per next character) keeps a 10,000-solution fleet's secrets at microseconds.
_TRIE_ABOVE = 256

_lock = threading.Lock()
_known: set[str] = set()
_snapshot: frozenset[str] | None = frozenset()  # _known frozen for the pattern caches; None once it grew
_name_patterns: tuple[str, ...] = ()


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and its URL- and JSON-escaped forms) in everything redacted from now on.

    Values shorter than ``MIN_SECRET_LENGTH`` are ignored: masking them would blank ordinary
    words, and such a value protects nothing. ``None`` and blank values are ignored too, so an
    unset environment variable can be passed straight in.
    """
    register_secrets((value,))


def register_secrets(values: Iterable[str | None]) -> None:
    """``register_secret`` for many values at once (a fleet's env secrets: one snapshot, not one a value)."""
    global _snapshot
    forms: set[str] = set()
    for value in values:
        if value is not None and len(value.strip()) >= MIN_SECRET_LENGTH:
            forms |= _variants(value)
    if not forms or forms <= _known:
        return
    with _lock:
        _known.update(forms)
        _snapshot = None  # frozen again when next needed: loading 10,000 solutions freezes once, not 10,000 times


def _registered() -> frozenset[str]:
    global _snapshot
    snapshot = _snapshot
    if snapshot is None:
        with _lock:
            snapshot = _snapshot = frozenset(_known)
    return snapshot


def register_secret_names(patterns: Iterable[str]) -> None:
    """Treat env variables matching ``patterns`` (names or ``fnmatch`` globs, any case) as secret-named too.

    For a workspace's ``secret_env_names`` in ``orbit.yaml``; the built-in words always apply.
    """
    global _name_patterns
    added = tuple(pattern.upper() for pattern in patterns if pattern.upper() not in _name_patterns)
    if added:
        with _lock:
            _name_patterns = (*_name_patterns, *added)
            _is_secret_name.cache_clear()


def known_secrets() -> frozenset[str]:
    """Every secret this process knows now, whole (registered ones in each escaped form, and the values of the
    credential variables): for asking of many texts at once whether one is a known secret."""
    return _registered() | _env_secrets()


def secret_name_patterns() -> tuple[str, ...]:
    """The name patterns registered with ``register_secret_names`` (upper case), in the order registered."""
    return _name_patterns


def clear_registered_secrets() -> None:
    """Forget every registered secret and name pattern (for tests, and processes that rotate credentials)."""
    global _snapshot, _name_patterns
    with _lock:
        _known.clear()
        _snapshot = frozenset()
        _name_patterns = ()
        _is_secret_name.cache_clear()


def is_secret_name(name: str) -> bool:
    """Whether an environment variable called ``name`` holds a secret, by its name alone.

    ``DB_PASSWORD``, ``API_TOKEN``, ``API_KEY``, ``clientSecret``, ``STORAGE_CONNECTION_STRING``, ``BLOB_SAS``
    do; ``MONKEY``, ``KEYCLOAK_URL``, ``KEY_VAULT_URL``, ``AUTH_MODE`` and ``LOG_LEVEL`` do not; nor does any
    name matched by a pattern registered with ``register_secret_names``, unless a built-in word marks it.
    """
    return _is_secret_name(name, _name_patterns)


@functools.lru_cache(maxsize=4096)
def _is_secret_name(name: str, patterns: tuple[str, ...]) -> bool:
    upper = name.upper()
    if any(fnmatch.fnmatchcase(upper, pattern) for pattern in patterns):
        return True
    words = [word.upper() for word in _NAME_WORD.findall(name)]
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        if word == "KEY" and following == "VAULT":
            continue
        if word in _SECRET_WORDS or (word == "CONNECTION" and following in ("STRING", "STR")):
            return True
        if any(part in word for part in _SECRET_PARTS):
            return True
    return False


def register_env_secrets(env: Mapping[str, Mapping[str, str]]) -> None:
    """Register the value of every secret-named variable of ``env`` (component → name → value).

    A flag or a short number under a secret-ish name (``TOKEN_AUTH_ENABLED: "true"``, ``TOKEN_TTL: "3600"``) is
    not registered: masking every ``true`` or ``3600`` in every log would hide more than it protects. Such a
    value is still ``***`` wherever the variable itself is shown (``shown_env_value``, plans).
    """
    register_secrets(value for values in env.values() for name, value in values.items()
                     if is_secret_name(name) and not _ordinary_value(value))


def _ordinary_value(value: str) -> bool:
    text = value.strip()
    return text.lower() in _ORDINARY_WORDS or (text.isdigit() and len(text) < 8)


def shown_env_value(name: str, value: str) -> str:
    """An env value as a screen or an output may show it: ``***`` for a secret-named variable (whatever its
    length), otherwise the value with secret-shaped parts masked."""
    if is_secret_name(name):
        return MASK if value else value
    return redact(value)


def redact(text: str) -> str:
    """``text`` with every known secret and secret-shaped value masked."""
    if not text:
        return text
    secrets = _all_secrets(_registered(), _env_secrets())
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

    A string under a credential-named key (``password``, ``accountKey``, ``sas_token``…, or an env
    variable's upper-case name that ``is_secret_name``) is masked whole, whatever it looks like. The
    secrets are looked up once per call and each distinct string is redacted once (a sweep's result
    repeats the same words thousands of times).
    """
    secrets = _all_secrets(_registered(), _env_secrets())
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
                        masked = sensitive[name] = _SENSITIVE_KEY.match(name) is not None or (
                            name.isupper() and is_secret_name(name))  # an env variable's name: DB_PASSWORD
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


@functools.lru_cache(maxsize=4)
def _all_secrets(registered: frozenset[str], env: frozenset[str]) -> frozenset[str]:
    # One union per change, not one per redacted line (a fleet registers thousands of values).
    return registered | env if env else registered


@functools.lru_cache(maxsize=16)
def _secret_pattern(secrets: frozenset[str]) -> re.Pattern[str]:
    # Longest first, so a secret that contains another is masked whole.
    if len(secrets) > _TRIE_ABOVE:
        with_trie = _trie_pattern(secrets)
        if with_trie is not None:
            return with_trie
    return re.compile("|".join(re.escape(secret) for secret in _longest_first(secrets)))


def _trie_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern matching the longest of ``secrets`` at each place, shaped as their prefix tree (None when
    the tree nests too deeply for ``re``: then the plain alternation is used)."""
    root: dict[str, dict[str, Any]] = {}
    for secret in secrets:
        node = root
        for char in secret:
            node = node.setdefault(char, {})
        node[""] = {}

    def source(node: dict[str, Any]) -> str:
        parts: list[str] = []
        while True:  # a chain of single children is one literal run, however long the secret
            if len(node) == 1 and "" not in node:
                (char, node), = node.items()
                parts.append(re.escape(char))
                continue
            break
        branches = [re.escape(char) + source(child) for char, child in sorted(node.items()) if char]
        if branches:
            group = "(?:" + "|".join(branches) + ")"
            parts.append(group + "?" if "" in node else group)  # greedy: the longer secret first
        return "".join(parts)

    try:
        return re.compile(source(root))
    except (RecursionError, re.error, OverflowError):
        return None


def _longest_first(values: Iterable[str]) -> list[str]:
    return sorted(values, key=lambda v: (-len(v), v))
