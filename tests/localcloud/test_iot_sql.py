"""The IoT SQL subset the local cloud's rules engine evaluates, each behaviour from the AWS IoT SQL reference
(developer guide: "SELECT clause", "FROM clause", "WHERE clause", "Functions", "Literals", "Undefined",
"Substitution templates")."""

from __future__ import annotations

import json
import re

import pytest

from localcloud import iot_sql


def message(payload: object, topic: str = "edgeml/pi-1/telemetry", client: str = "pi-1") -> iot_sql.Message:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return iot_sql.Message(topic, raw, client, 1_765_000_000_123)


def test_select_star_adds_the_named_expressions_to_every_key_of_the_payload() -> None:
    """SELECT clause: `*` is the whole payload; `AS` names an expression; topic(n) is the n-th level from 1."""
    statement = iot_sql.parse("SELECT *, topic(2) AS device, timestamp() AS received FROM 'edgeml/+/telemetry'")
    out = statement.evaluate(message({"seq": 3, "messages": 10}))
    assert out == {"seq": 3, "messages": 10, "device": "pi-1", "received": 1_765_000_000_123}


def test_from_is_an_mqtt_filter_and_other_topics_do_not_trigger() -> None:
    """FROM clause: `+` is one level, `#` the rest."""
    statement = iot_sql.parse("SELECT * FROM 'edgeml/+/telemetry'")
    assert statement.evaluate(message({}, topic="edgeml/pi-1/predictions")) is None
    assert statement.evaluate(message({}, topic="edgeml/pi-1/x/telemetry")) is None
    assert iot_sql.parse("SELECT * FROM 'edgeml/#'").evaluate(message({"a": 1}, topic="edgeml/a/b/c")) == {"a": 1}


def test_where_must_be_true_and_undefined_is_not() -> None:
    """WHERE clause and Undefined: a missing key makes the comparison Undefined, which does not trigger."""
    statement = iot_sql.parse("SELECT seq FROM 'edgeml/+/telemetry' WHERE dropped > 0 AND NOT (seq = 2)")
    assert statement.evaluate(message({"seq": 1, "dropped": 4})) == {"seq": 1}
    assert statement.evaluate(message({"seq": 2, "dropped": 4})) is None
    assert statement.evaluate(message({"seq": 1, "dropped": 0})) is None
    assert statement.evaluate(message({"seq": 1})) is None


def test_a_missing_key_is_left_out_and_arithmetic_on_it_is_undefined() -> None:
    statement = iot_sql.parse("SELECT a.b AS deep, messages / (end - start) AS rate, nothing FROM 'x'")
    assert statement.evaluate(message({"a": {"b": 5}, "messages": 60, "start": 10, "end": 40}, topic="x")) == {
        "deep": 5,
        "rate": 2.0,
    }
    assert statement.evaluate(message({"messages": 1, "start": 1, "end": 1}, topic="x")) == {}  # 1/0: Undefined


def test_literals_strings_numbers_and_clientid() -> None:
    statement = iot_sql.parse("SELECT 'it''s' AS text, 2.5e1 AS n, -3 AS m, true AS t, clientid() AS who FROM 'x'")
    assert statement.evaluate(message({}, topic="x")) == {"text": "it's", "n": 25.0, "m": -3, "t": True, "who": "pi-1"}


def test_a_payload_that_is_not_json_still_triggers_select_star_with_nothing_to_add() -> None:
    statement = iot_sql.parse("SELECT *, topic() AS t FROM 'x'")
    assert statement.evaluate(message(b"\xff\x00", topic="x")) == {"t": "x"}


@pytest.mark.parametrize(
    "text",
    [
        "SELECT FROM 'x'",
        "SELECT * FROM x",
        "SELECT * FROM 'x' WHERE",
        "SELECT 1 FROM 'x'",
        "SELECT cast(a) AS b FROM 'x'",
    ],
)
def test_statements_outside_the_subset_are_refused_with_the_reason(text: str) -> None:
    with pytest.raises(iot_sql.SqlError):
        iot_sql.parse(text)


def test_substitution_templates_in_an_action_parameter() -> None:
    """Substitution templates: `${expression}` in an action's parameter, evaluated on the message."""
    key = iot_sql.substitute("telemetry/rule-errors/${topic(2)}/${timestamp()}-${newuuid()}.json", message({}))
    assert re.fullmatch(r"telemetry/rule-errors/pi-1/1765000000123-[0-9a-f-]{36}\.json", key)
