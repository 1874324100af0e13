"""The AWS IoT SQL that topic rules are written in, the subset this kit's rules use, evaluated as the rules engine does
(sans-IO: a statement and a message in, the rule's output or None out).

From the AWS IoT SQL reference (developer guide, "AWS IoT SQL reference", SQL version 2016-03-23):
- `SELECT <items> FROM '<topic filter>' [WHERE <condition>]`; an item is `*` (every key of the JSON payload) or an
  expression with an optional `AS <name>`; a field reference is a key path (`a.b`) into the payload.
- The FROM filter uses MQTT's wildcards (`+` one level, `#` the rest); a message on another topic does not trigger.
- A reference to a key the payload lacks is Undefined: the item is left out of the output, arithmetic or comparison
  on it is Undefined, and a WHERE that is not true does not trigger the rule.
- Functions: `topic()` (the whole topic), `topic(n)` (its n-th level, from 1), `timestamp()` (the rules engine's
  time, milliseconds since the epoch), `clientid()` (the publisher's MQTT client id), `newuuid()`.
- Literals: strings in single quotes, numbers, `true`, `false`, `null`; operators `+ - * / %`, `= <> != < <= > >=`,
  `AND`, `OR`, `NOT`.
Substitution templates (`${expression}` in an action's parameters, "Substitution templates") use the same
expressions.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt


class SqlError(ValueError):
    """The statement is outside the subset, or not SQL at all; the message says where."""


class _Undefined:
    def __repr__(self) -> str:
        return "Undefined"


UNDEFINED: Any = _Undefined()


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    client_id: str
    timestamp_ms: int


Expression = Callable[[dict[str, Any], Message], Any]


@dataclass(frozen=True)
class Statement:
    items: tuple[tuple[str, Expression | None], ...]  # (output key, expression); None: `*`
    topic_filter: str
    where: Expression | None

    def matches(self, topic: str) -> bool:
        return bool(mqtt.topic_matches_sub(self.topic_filter, topic))

    def evaluate(self, message: Message) -> dict[str, Any] | None:
        """The rule's output for this message, None when it does not trigger (another topic, or WHERE not true)."""
        if not self.matches(message.topic):
            return None
        payload = _payload(message.payload)
        if self.where is not None and self.where(payload, message) is not True:
            return None
        output: dict[str, Any] = {}
        for name, expression in self.items:
            if expression is None:
                if isinstance(payload, dict):
                    output.update(payload)
                continue
            value = expression(payload, message)
            if value is not UNDEFINED:
                output[name] = value
        return output


def _payload(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return UNDEFINED


_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<string>'(?:[^']|'')*')|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><>|!=|<=|>=|[*,().=<>+\-/%]))"
)
_KEYWORDS = {"SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "TRUE", "FALSE", "NULL"}


def _tokens(text: str) -> list[tuple[str, str]]:
    found, at = [], 0
    text = text.rstrip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise SqlError(f"cannot read the statement at {text[at : at + 20]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "name" and value.upper() in _KEYWORDS:
            kind, value = "keyword", value.upper()
        found.append((kind, value))
        at = match.end()
    return found


def parse(text: str) -> Statement:
    return _Parser(_tokens(text)).statement()


def substitute(template: str, message: Message) -> str:
    """An action parameter's `${expression}` templates, evaluated on the message."""
    payload = _payload(message.payload)

    def one(match: re.Match[str]) -> str:
        value = _Parser(_tokens(match.group(1))).lone_expression()(payload, message)
        if value is UNDEFINED:
            return ""
        return value if isinstance(value, str) else json.dumps(value)

    return re.sub(r"\$\{([^}]*)\}", one, template)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.at = tokens, 0

    def _peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def _take(self, kind: str, value: str | None = None) -> str:
        found_kind, found = self._peek()
        if found_kind != kind or (value is not None and found != value):
            raise SqlError(f"expected {value or kind}, found {found or 'the end'}")
        self.at += 1
        return found

    def _is(self, kind: str, value: str) -> bool:
        return self._peek() == (kind, value)

    def statement(self) -> Statement:
        self._take("keyword", "SELECT")
        items = [self._item()]
        while self._is("op", ","):
            self._take("op", ",")
            items.append(self._item())
        self._take("keyword", "FROM")
        literal = self._take("string")
        where = None
        if self._is("keyword", "WHERE"):
            self._take("keyword", "WHERE")
            where = self._or()
        if self._peek()[0] != "end":
            raise SqlError(f"unexpected {self._peek()[1]!r} after the statement")
        return Statement(tuple(items), literal[1:-1].replace("''", "'"), where)

    def lone_expression(self) -> Expression:
        expression = self._or()
        if self._peek()[0] != "end":
            raise SqlError(f"unexpected {self._peek()[1]!r} in a substitution template")
        return expression

    def _item(self) -> tuple[str, Expression | None]:
        if self._is("op", "*"):
            self._take("op", "*")
            return "*", None
        start = self.at
        expression = self._or()
        if self._is("keyword", "AS"):
            self._take("keyword", "AS")
            return self._take("name"), expression
        kind, value = self.tokens[self.at - 1]
        if kind != "name":
            raise SqlError(f"name the expression at {self.tokens[start][1]!r} with AS")
        return value, expression

    def _or(self) -> Expression:
        left = self._and()
        while self._is("keyword", "OR"):
            self._take("keyword", "OR")
            left = _logic(left, self._and(), any_true=True)
        return left

    def _and(self) -> Expression:
        left = self._not()
        while self._is("keyword", "AND"):
            self._take("keyword", "AND")
            left = _logic(left, self._not(), any_true=False)
        return left

    def _not(self) -> Expression:
        if self._is("keyword", "NOT"):
            self._take("keyword", "NOT")
            inner = self._not()
            return lambda p, m: (not value) if isinstance(value := inner(p, m), bool) else UNDEFINED
        return self._comparison()

    def _comparison(self) -> Expression:
        left = self._additive()
        kind, value = self._peek()
        if kind == "op" and value in _COMPARE:
            self.at += 1
            return _binary(left, self._additive(), _COMPARE[value])
        return left

    def _additive(self) -> Expression:
        left = self._multiplicative()
        while self._peek()[0] == "op" and self._peek()[1] in "+-":
            operator = self._take("op")
            left = _binary(left, self._multiplicative(), _ARITHMETIC[operator])
        return left

    def _multiplicative(self) -> Expression:
        left = self._unary()
        while self._peek()[0] == "op" and self._peek()[1] in ("*", "/", "%"):
            operator = self._take("op")
            left = _binary(left, self._unary(), _ARITHMETIC[operator])
        return left

    def _unary(self) -> Expression:
        if self._is("op", "-"):
            self._take("op", "-")
            inner = self._unary()
            return lambda p, m: -v if _number(v := inner(p, m)) else UNDEFINED
        return self._primary()

    def _primary(self) -> Expression:
        kind, value = self._peek()
        if kind == "number":
            self.at += 1
            number = float(value) if any(c in value for c in ".eE") else int(value)
            return lambda p, m: number
        if kind == "string":
            self.at += 1
            text = value[1:-1].replace("''", "'")
            return lambda p, m: text
        if kind == "keyword" and value in ("TRUE", "FALSE", "NULL"):
            self.at += 1
            constant = {"TRUE": True, "FALSE": False, "NULL": None}[value]
            return lambda p, m: constant
        if self._is("op", "("):
            self._take("op", "(")
            inner = self._or()
            self._take("op", ")")
            return inner
        if kind == "name":
            self.at += 1
            if self._is("op", "("):
                return self._call(value)
            path = [value]
            while self._is("op", "."):
                self._take("op", ".")
                path.append(self._take("name"))
            return lambda p, m: _field(p, path)
        raise SqlError(f"unexpected {value or 'end of statement'!r}")

    def _call(self, name: str) -> Expression:
        self._take("op", "(")
        arguments: list[Expression] = []
        while not self._is("op", ")"):
            arguments.append(self._or())
            if not self._is("op", ")"):
                self._take("op", ",")
        self._take("op", ")")
        function = _FUNCTIONS.get(name.lower())
        if function is None:
            subset = ", ".join(_FUNCTIONS)
            raise SqlError(f"function {name}() is not in the subset the local cloud evaluates ({subset})")
        return lambda p, m: function(m, *[a(p, m) for a in arguments])


def _field(payload: Any, path: list[str]) -> Any:
    value = payload
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return UNDEFINED
        value = value[key]
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _binary(left: Expression, right: Expression, operate: Callable[[Any, Any], Any]) -> Expression:
    def evaluate(payload: Any, message: Message) -> Any:
        a, b = left(payload, message), right(payload, message)
        if a is UNDEFINED or b is UNDEFINED:
            return UNDEFINED
        try:
            return operate(a, b)
        except (TypeError, ZeroDivisionError):
            return UNDEFINED

    return evaluate


def _logic(left: Expression, right: Expression, any_true: bool) -> Expression:
    def evaluate(payload: Any, message: Message) -> Any:
        a, b = left(payload, message), right(payload, message)
        if any_true:
            return True if True in (a, b) else (False if a is False and b is False else UNDEFINED)
        return False if False in (a, b) else (True if a is True and b is True else UNDEFINED)

    return evaluate


def _arithmetic(operate: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def checked(a: Any, b: Any) -> Any:
        if not (_number(a) and _number(b)):
            raise TypeError("not numbers")
        return operate(a, b)

    return checked


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": _arithmetic(lambda a, b: a + b),
    "-": _arithmetic(lambda a, b: a - b),
    "*": _arithmetic(lambda a, b: a * b),
    "/": _arithmetic(lambda a, b: a / b),
    "%": _arithmetic(lambda a, b: a % b),
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _topic(message: Message, level: Any = None) -> Any:
    if level is None:
        return message.topic
    levels = message.topic.split("/")
    return levels[level - 1] if _number(level) and 1 <= level <= len(levels) else UNDEFINED


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "topic": _topic,
    "timestamp": lambda message: message.timestamp_ms,
    "clientid": lambda message: message.client_id,
    "newuuid": lambda message: str(uuid.uuid4()),
}
