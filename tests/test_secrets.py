"""The credential patterns: what a secret value and a secret's key name look like, and what is not one."""

from __future__ import annotations

import doctest

import pytest

from etl_monitor_dagster.core import secrets
from etl_monitor_dagster.core.secrets import CREDENTIALS, credential_in, is_credential_key, is_secret_reference

# 64 bytes of base64, as Azure shows a storage account key (made up here)
ACCOUNT_KEY = "Zm9vYmFy" * 10 + "cXV4+/=="
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkVUTCJ9"
       ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")


@pytest.mark.parametrize(("text", "what"), [
    ("dapi0123456789abcdef0123456789abcdef", "a Databricks access token"),
    (JWT, "a JSON web token"),
    (ACCOUNT_KEY, "an Azure storage account key"),
    ("https://acct.blob.core.windows.net/raw?sv=2022-11-02&sr=c&sig=Xy3%2Bq0AbCdEfGh%3D",
     "a shared access signature (sig=)"),
    ("postgresql://etl:hunter2@db.example.com:5432/etl", "a URL with user:password@"),
    ("Server=tcp:db.database.windows.net;Database=etl;User ID=etl;Password=S3cret!;", "a password assignment"),
    ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=abc123==;", "a password assignment"),
    ("https://api.example.com/export?format=csv&access_token=abc123", "a password assignment"),
    ("-----BEGIN RSA PRIVATE KEY-----", "a private key"),
    ("xoxb-123456789012-abcdefghijkl", "a Slack token"),
])
def test_each_kind_of_credential_is_named(text, what):
    assert credential_in(f"before {text} after") == what


@pytest.mark.parametrize("text", [
    "{{secrets/etl/db-password}}", "Password={{secrets/etl/db-password}};", "abfss://raw@acct.dfs.core.windows.net/x",
    "jdbc:sqlserver://db:1433;database=etl", "https://host:443/path@v2", "/Repos/hr/etl/score_employees",
    "tests.tasks:refuse_own_done", "the token expires daily", "sql/retail/load_fx_rates.sql", "0123-456789-abcdefgh",
])
def test_references_paths_and_prose_are_not_credentials(text):
    assert credential_in(text) is None


@pytest.mark.parametrize(("name", "holds_one"), [
    ("DB_PASSWORD", True), ("client_secret", True), ("clientSecret", True), ("api_key", True), ("apiKey", True),
    ("fs.azure.account.key.acct.dfs.core.windows.net", True), ("fs.azure.sas.fixed.token", True),
    ("fs.azure.account.oauth2.client.secret", True), ("SAS", True), ("credentials", True), ("passwd", True),
    ("fs.azure.sas.token.provider.type", False), ("secret_scope", False), ("DB_PASSWORD_FILE", False),
    ("fs.azure.account.oauth2.client.id", False), ("partition_key", False), ("kafka.sasl.mechanism", False),
    ("spark.databricks.delta.preview.enabled", False),
])
def test_key_names_that_hold_a_secret(name, holds_one):
    assert is_credential_key(name) is holds_one


def test_the_account_key_example_is_the_length_azure_gives():
    assert len(ACCOUNT_KEY) == 88 and credential_in(ACCOUNT_KEY + "A") is None


def test_only_a_whole_secret_reference_is_one():
    assert is_secret_reference("{{secrets/etl-scope/storage.key}}")
    assert not is_secret_reference("x {{secrets/etl/key}}")
    assert not is_secret_reference("{{secrets/etl}}")


def test_every_pattern_is_named_once_and_the_examples_hold():
    assert len({c.what for c in CREDENTIALS}) == len(CREDENTIALS)
    assert doctest.testmod(secrets).failed == 0
