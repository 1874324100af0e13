"""Local pub/sub topic matching, as the nucleus's SubscriptionTrie does it (not quite MQTT).

Topics split on `/` with Java's `String.split`, which drops trailing empty levels (`a/b/` is `a/b`);
`+` is exactly one level, `#` one or more trailing levels (so `a/#` does not match `a`), and a wildcard is
one only as a whole level.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=8192)
def levels(topic: str) -> tuple[str, ...]:
    parts = topic.split("/")
    while parts and parts[-1] == "":
        parts.pop()
    return tuple(parts)


def is_wildcard(topic_filter: str) -> bool:
    return any(level in ("+", "#") for level in levels(topic_filter))


def has_wildcard_character(topic: str) -> bool:
    return any(char in topic for char in "+#*")


def matches(topic_filter: str, topic: str) -> bool:
    wanted, actual = levels(topic_filter), levels(topic)
    for index, level in enumerate(wanted):
        if level == "#":
            return len(actual) > index
        if index >= len(actual):
            return False
        if level != "+" and level != actual[index]:
            return False
    return len(wanted) == len(actual)
