"""What a credential looks like: the patterns of secret values and of key names that hold one.

One home for them: the catalogue loader refuses what they match, and anything that must keep secrets out
of text it shows (error messages, logs) can scrub what they match. A Databricks secret reference
(``{{secrets/<scope>/<key>}}``) names a secret without holding it, so it is never a credential.

>>> credential_in("jdbc:sqlserver://db;user=etl;Password=hunter2")
'a password assignment'
>>> credential_in("{{secrets/etl/db-password}}") is None
True
>>> is_credential_key("DB_PASSWORD"), is_credential_key("fs.azure.sas.token.provider.type")
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

# Databricks secret scopes: letters, digits, '-', '_', '@', '.' (up to 128); keys: the same without '@'.
SECRET_REFERENCE = re.compile(r"\{\{\s*secrets/[\w.@-]{1,128}/[\w.-]{1,128}\s*\}\}")


@dataclass(frozen=True)
class Credential:
    """One kind of secret value: ``what`` names it in a message, ``pattern`` matches it in any text."""

    what: str
    pattern: re.Pattern[str]


# Each pattern matches the secret itself (with at most its label), so a scrubber can replace the match.
CREDENTIALS: tuple[Credential, ...] = (
    Credential("a Databricks access token", re.compile(r"\bdapi[0-9a-f]{32}(?:-\d+)?\b")),
    Credential("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
    # 64 random bytes in base64: 86 characters and '=='
    Credential("an Azure storage account key", re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])")),
    Credential("a shared access signature (sig=)", re.compile(r"(?i)(?<![A-Za-z0-9])sig=[A-Za-z0-9%+/=_-]{8,}")),
    Credential("a URL with user:password@", re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@?#]+:[^/\s@?#]+@")),
    # Password=...; in a connection string, password='...' in a JAAS line, ?token=... in a URL
    Credential("a password assignment", re.compile(
        r"(?i)(?<![a-z0-9])(?:password|passwd|pwd|accountkey|sharedaccesskey|secret|token|api_?key)"
        r"\s*=\s*['\"]?(?!\{\{)[^\s;&'\"]+")),
    Credential("a private key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    Credential("an Azure AD client secret", re.compile(r"(?<![\w~.-])[\w~.-]{3}\dQ~[\w~.-]{31,34}(?![\w~.-])")),
    Credential("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    Credential("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    Credential("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
)

# Words of a key name that say its value is a secret: DB_PASSWORD, clientSecret, fs.azure.sas.<c>.<a>.
_SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "credential")
_SECRET_SEGMENTS = frozenset({"pwd", "sas", "apikey", "accountkey", "accesskey", "privatekey", "sharedaccesskey"})
_SECRET_PAIRS = frozenset({("account", "key"), ("api", "key"), ("access", "key"), ("private", "key"),
                           ("storage", "key"), ("master", "key"), ("signing", "key")})
# A last word that makes the key name a setting about a secret, not the secret: ...sas.token.provider.type,
# secret_scope, DB_PASSWORD_FILE.
_ABOUT_A_SECRET = frozenset({"type", "provider", "class", "endpoint", "enabled", "scope", "name", "url", "uri",
                             "file", "path", "expiry", "ttl", "mode"})


def credential_in(text: str) -> str | None:
    """What kind of credential ``text`` holds (the first found), or None; secret references are not ones."""
    text = SECRET_REFERENCE.sub("", text)
    return next((c.what for c in CREDENTIALS if c.pattern.search(text)), None)


def is_secret_reference(value: str) -> bool:
    """``value`` is exactly one Databricks secret reference, ``{{secrets/<scope>/<key>}}``."""
    return SECRET_REFERENCE.fullmatch(value.strip()) is not None


def is_credential_key(name: str) -> bool:
    """The key name says its value is a secret (``client_secret``, ``fs.azure.account.key.<account>...``)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)  # clientSecret -> client Secret
    words = [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]
    if not words or words[-1] in _ABOUT_A_SECRET:
        return False
    return (any(secret in w for w in words for secret in _SECRET_WORDS)
            or any(w in _SECRET_SEGMENTS for w in words)
            or any(pair in _SECRET_PAIRS for pair in pairwise(words)))


def credentials_in_value(value: Any, loc: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """Where a parsed document (dicts, lists, scalars) holds a credential, and what: in a value or a key, or a
    key named as a secret whose value is no secret reference. Each finding is (its location, the problem)."""
    if isinstance(value, str):
        what = credential_in(value)
        return [(loc, f"holds what looks like {what}")] if what else []
    if isinstance(value, list):
        return [f for i, item in enumerate(value) for f in credentials_in_value(item, (*loc, i))]
    if not isinstance(value, dict):
        return []
    found: list[tuple[tuple[Any, ...], str]] = []
    for key, item in value.items():
        if what := credential_in(str(key)):
            found.append((loc, f"a key holds what looks like {what}"))
        elif (is_credential_key(str(key)) and isinstance(item, str | int | float) and not isinstance(item, bool)
              and item != "" and not (isinstance(item, str) and is_secret_reference(item))):
            found.append(((*loc, key), "is named as a secret, so its value must be a secret reference"))
            continue
        found += credentials_in_value(item, (*loc, key))
    return found


def credential_lines(text: str, document: Any) -> list[tuple[int, str]]:
    """The lines of ``text`` holding a credential that is in none of the parsed ``document``'s strings (one
    in a comment, or anywhere in a text that did not parse): (line number, the problem)."""
    scalars = list(_strings(document))
    found = []
    for number, line in enumerate(SECRET_REFERENCE.sub("", text).splitlines(), 1):
        for credential in CREDENTIALS:
            matches = [m.group() for m in credential.pattern.finditer(line)]
            if any(not any(m in s for s in scalars) for m in matches):  # others are named by their entry
                found.append((number, f"holds what looks like {credential.what}"))
                break
    return found


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
