"""One scrubber for every free text the monitor stores or shows: error and log messages.

Spark echoes data values (``CAST_INVALID_INPUT``), drivers echo connection strings, HTTP clients echo
headers: ``scrub`` replaces credentials by ``***`` before such a text reaches LogMessage, a receipt,
Dagster's event log, an alert or the CLI's output. The monitor's own values (task names, ids, codes)
are never passed through it.

What a credential looks like is ``secrets.py``'s (its ``CREDENTIALS`` and ``is_credential_key``, which
the catalogue uses to refuse them); this module adds only the shapes of texts shown, not of catalogue
files: HTTP headers, ``key: value`` and quoted keys (JSON, a dict's repr).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .secrets import CREDENTIALS, is_credential_key, is_secret_reference

MASK = "***"

# An Authorization header, whatever its scheme (Bearer, Basic, SharedKey account:signature, ...).
_AUTHORIZATION = re.compile(r"(?i)\b(authorization)[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token|digest|"
                            r"negotiate|ntlm|sharedkey|sharedaccesssignature)\s+)?[^\s,;'\"]+")
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+")
# key=value or key: value, the key possibly quoted; the value ends at whitespace, a separator, or its
# closing quote or braces (a secret reference, {{secrets/scope/key}}, is kept: it names a secret, holds none).
_FIELD = re.compile(r"(?P<key>[A-Za-z_][\w.-]*)(?P<separator>[\"']?\s*[:=]\s*)"
                    r"(?P<value>\{\{[^}]*\}\}|\"[^\"]*\"|'[^']*'|\{[^}]*\}|[^\s;&,'\"{}]+)")
# Keys whose values are credentials though their names hold no secret word (a SAS token, its signature).
_ALSO_CREDENTIAL_KEYS = frozenset({"sharedaccesssignature", "sig"})
# Slack tokens of any length: the alert channels' own, in their errors (the shared pattern wants the
# length of a real one, to refuse only those in catalogue files).
_SLACK = re.compile(r"\bxox[abposr]-[A-Za-z0-9-]+")
# A private key's whole PEM block (the shared pattern finds its first line), to its end or the text's.
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----.*?(?:-----END (?:[A-Z]+ )?PRIVATE KEY-----|\Z)",
                          re.DOTALL)


_LABEL = re.compile(r"(?P<key>[A-Za-z_][\w.-]*)\s*=\s*")


def _is_credential_key(key: str) -> bool:
    return is_credential_key(key) or key.lower() in _ALSO_CREDENTIAL_KEYS


def _field(match: re.Match[str]) -> str:
    key, value = match["key"], match["value"]
    if is_secret_reference(value) or not _is_credential_key(key):
        return match[0]
    return f"{key}{match['separator']}{MASK}"


def _credential(match: re.Match[str]) -> str:
    """A credential found by a shared pattern, masked with its label kept: ``scheme://***@``, ``sig=***``."""
    text = match[0]
    if "://" in text:  # user:password@ of a URL
        return text[: text.index("://") + 3] + MASK + "@"
    label = _LABEL.match(text)  # Password=..., sig=...; not the '=' padding of a key in base64
    if label and _is_credential_key(label["key"]):
        return text[: label.end()] + MASK
    return MASK


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with ``secrets`` (values of four characters or more) and every credential replaced by
    ``***``: Authorization headers and bearer tokens, values of credential keys (``Password=``,
    ``pwd=``, ``AccountKey=``, ``SharedAccessSignature=``, ``client_secret=``, ``"token": ...``), and
    what ``secrets.CREDENTIALS`` matches (Databricks tokens, JWTs, URL passwords, SAS ``sig=``, storage
    account keys, private keys, ...). Labels are kept (``Password=***``, ``https://***@host``); scrubbing a scrubbed
    text changes nothing."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _AUTHORIZATION.sub(rf"\1: {MASK}", text)
    text = _BEARER.sub(f"Bearer {MASK}", text)
    text = _FIELD.sub(_field, text)
    text = _SLACK.sub(MASK, text)
    text = _PRIVATE_KEY.sub(MASK, text)
    for credential in CREDENTIALS:
        text = credential.pattern.sub(_credential, text)
    return text
