"""The ADF Lookup query, as ADF sends it: its text evaluated the way Data Factory evaluates it, then run on
the engine against a real monitor schema, with hostile parameters."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from pyspark.errors import AnalysisException

from etl_monitor_dagster.core.sql import quote_string

REPO = Path(__file__).resolve().parents[1]
LOOKUP = REPO / "databricks" / "adf" / "lookup_active_watermark.sql"


# ---------------------------------------------------------------- ADF's expression language, the part used

class ADFExpressionError(Exception):
    """Text that Data Factory would refuse to evaluate (or that this evaluator does not know)."""


_TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>[(),.}]))")


def _functions(parameters: Mapping[str, str]) -> dict[str, Callable[..., Any]]:
    def replace(text: str, old: str, new: str) -> str:  # every occurrence, case-sensitive
        if not all(isinstance(v, str) for v in (text, old, new)) or not old:
            raise ADFExpressionError("replace takes three strings, the second not empty")
        return text.replace(old, new)

    def concat(*values: str) -> str:
        if not values or not all(isinstance(v, str) for v in values):
            raise ADFExpressionError("concat takes one or more strings")
        return "".join(values)

    return {"pipeline": lambda: {"parameters": dict(parameters)}, "replace": replace, "concat": concat}


class _Expression:
    """Evaluates one ``@{...}`` body: string literals ('' is a quote; backslash is an ordinary character),
    function calls and ``.property`` access, as Data Factory's expression language defines them."""

    def __init__(self, text: str, start: int, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.text, self.at, self.functions = text, start, functions

    def token(self, peek: bool = False) -> tuple[str, str]:
        match = _TOKEN.match(self.text, self.at)
        if match is None:
            raise ADFExpressionError(f"unexpected text at {self.at}: {self.text[self.at:self.at + 20]!r}")
        if not peek:
            self.at = match.end()
        kind = match.lastgroup or ""
        return kind, match[kind]

    def expect(self, punct: str) -> None:
        if self.token() != ("punct", punct):
            raise ADFExpressionError(f"expected {punct!r} before {self.at}")

    def value(self) -> Any:
        kind, text = self.token()
        if kind == "string":
            result: Any = text[1:-1].replace("''", "'")
        elif kind == "name" and text.lower() in self.functions:
            self.expect("(")
            arguments = []
            if self.token(peek=True) != ("punct", ")"):
                arguments.append(self.value())
                while self.token(peek=True) == ("punct", ","):
                    self.token()
                    arguments.append(self.value())
            self.expect(")")
            result = self.functions[text.lower()](*arguments)
        else:
            raise ADFExpressionError(f"unknown function or value {text!r}")
        while self.token(peek=True) == ("punct", "."):
            self.token()
            kind, name = self.token()
            if kind != "name" or not isinstance(result, Mapping) or name not in result:
                raise ADFExpressionError(f"no property {name!r}")
            result = result[name]
        return result


def evaluate(template: str, parameters: Mapping[str, str]) -> str:
    """``template`` with each ``@{expression}`` replaced by its string value and ``@@{`` by ``@{``, as ADF
    interpolates a text value; any other ``@`` stays as it is (a value starting with ``@`` is refused:
    ADF would read all of it as one expression)."""
    if template.startswith("@") and not template.startswith(("@{", "@@")):
        raise ADFExpressionError("a value starting with @ is one expression, not a template")
    functions = _functions(parameters)
    out, at = [], 0
    while (found := template.find("@", at)) >= 0:
        out.append(template[at:found])
        if template.startswith("@@{", found):
            out.append("@{")
            at = found + 3
        elif template.startswith("@{", found):
            expression = _Expression(template, found + 2, functions)
            value = expression.value()
            expression.expect("}")
            if not isinstance(value, str):
                raise ADFExpressionError("this evaluator interpolates strings only")
            out.append(value)
            at = expression.at
        else:
            out.append("@")
            at = found + 1
    return "".join(out) + template[at:]


@pytest.mark.parametrize(("template", "expected"), [
    ("Answer: @{pipeline().parameters.A}!", "Answer: it's!"),
    ("@{replace('a.b.c', '.', '`.`')}", "a`.`b`.`c"),
    ("@{concat('''', '\\', replace(pipeline().parameters.A, '''', ''''''))}", "'\\it''s"),
    ("@@{pipeline().parameters.A} @activity('x')", "@{pipeline().parameters.A} @activity('x')"),
    ("@{ concat( 'a' , 'b' ) }", "ab"),
])
def test_the_evaluator_reads_adf_templates_as_adf_does(template, expected):
    assert evaluate(template, {"A": "it's"}) == expected


@pytest.mark.parametrize("template", ["@{pipeline().parameters.B}", "@{substring('ab', 0, 1)}", "@{'a'",
                                      "@{...}", "@pipeline().parameters.A"])
def test_the_evaluator_refuses_what_adf_would_not_evaluate(template):
    with pytest.raises(ADFExpressionError):
        evaluate(template, {"A": "a"})


def test_the_whole_lookup_file_is_a_template_adf_can_evaluate():
    query = evaluate(LOOKUP.read_text(), {"MonitorSchema": "main.etl", "ProjectCode": "P", "ProcessLoad": "L",
                                          "ParameterName": "N"})
    assert "FROM `main`.`etl`.v_watermarks" in query and "'@{" not in query
    assert "ProjectCode = 'P'" in query and "ParameterName = 'N'" in query


# ------------------------------------------------------------------------------- the query on the engine

HOSTILE_VALUE = "Q'A \\ \"x\" ${env:HOME} -- ü"  # Spark substitutes ${env:...} in SQL text it is given
# What Spark says when a FROM clause's text is a name that resolves to nothing (not a syntax error: the text
# stayed inside the name).
NAME_NOT_FOUND = {"TABLE_OR_VIEW_NOT_FOUND", "REQUIRES_SINGLE_PART_NAMESPACE", "INVALID_ATTRIBUTE_NAME_SYNTAX"}


def _lookup(spark: Any, parameters: Mapping[str, str], template: str | None = None) -> list[Any]:
    return spark.sql(evaluate(template or LOOKUP.read_text(), parameters)).collect()


@pytest.fixture
def watermark(make_process, monitor) -> dict[str, str]:
    """A DELTA_ID parameter at 42 under hostile names: the pipeline parameters that read it."""
    process = make_process(project=HOSTILE_VALUE)
    process.parameter("Last'Id\\", "DELTA_ID")
    monitor.advance_watermark(HOSTILE_VALUE, process.load, "Last'Id\\", new_int_value=42)
    return {"ProjectCode": HOSTILE_VALUE, "ProcessLoad": process.load, "ParameterName": "Last'Id\\"}


@pytest.mark.parametrize("two_part", [False, True], ids=["schema", "catalog.schema"])
def test_the_lookup_reads_the_active_value_of_hostile_names(spark, monitor, watermark, two_part):
    schema = f"spark_catalog.{monitor.schema}" if two_part else monitor.schema

    (row,) = _lookup(spark, {**watermark, "MonitorSchema": schema})

    assert (row.ActiveValue, row.WatermarkState, row.ParameterType) == ("42", "DELTA: 42", "DELTA_ID")


def test_a_hostile_monitor_schema_stays_a_name_and_cannot_forge_the_row(spark, monitor, watermark):
    forged = ("(SELECT 'forged' AS ActiveValue, 'x' AS WatermarkState, 'y' AS ParameterType, "
              f"{quote_string(watermark['ProjectCode'])} AS ProjectCode, {quote_string(watermark['ProcessLoad'])} "
              f"AS ProcessLoad, {quote_string(watermark['ParameterName'])} AS ParameterName) AS t --")
    escaped = re.search(r"FROM (@\{.*?\})\.v_watermarks", LOOKUP.read_text())
    assert escaped is not None
    pasted_raw = LOOKUP.read_text().replace(escaped[1], "@{pipeline().parameters.MonitorSchema}")
    # the attack is real: pasted as it comes, the schema parameter forges the row the pipeline reads
    assert [r.ActiveValue for r in _lookup(spark, {**watermark, "MonitorSchema": forged}, pasted_raw)] == ["forged"]

    for hostile, one_name in [(forged, f"`{forged}`.`v_watermarks`"),
                              ("${env:HOME}", "`\\u0024{env:HOME}`.`v_watermarks`"),
                              (f"{monitor.schema}`.v_watermarks UNION ALL SELECT 'x', 'y', 'z' --", None)]:
        with pytest.raises(AnalysisException) as refused:
            _lookup(spark, {**watermark, "MonitorSchema": hostile})
        assert refused.value.getCondition() in NAME_NOT_FOUND, refused.value
        assert one_name is None or one_name in str(refused.value)
