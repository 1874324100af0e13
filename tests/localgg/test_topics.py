"""Local pub/sub topic matching (greengrass-ipc.md §9.2)."""

from __future__ import annotations

import pytest

from localgg.topics import is_wildcard, levels, matches


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("demo/#", "demo", False),
        ("demo/#", "demo/a", True),
        ("demo/#", "demo/a/b", True),
        ("demo/+/b", "demo/a/b", True),
        ("demo/+/b", "demo//b", True),
        ("demo/+/b", "demo/a/b/", True),  # trailing empty levels are dropped
        ("demo/+/b", "demo/a/c", False),
        ("demo/+", "demo", False),
        ("#", "anything/at/all", True),
        ("a+/b", "a+/b", True),  # wildcards only as whole levels
        ("a+/b", "ax/b", False),
        ("a/b", "a/b/", True),
        ("a//b", "a/b", False),
    ],
)
def test_matching(topic_filter: str, topic: str, expected: bool) -> None:
    assert matches(topic_filter, topic) is expected


def test_levels_drop_trailing_empties_like_java_split() -> None:
    assert levels("a/b//") == ("a", "b")
    assert levels("/") == ()
    assert levels("/a") == ("", "a")


def test_wildcard_detection() -> None:
    assert is_wildcard("a/+/b") and is_wildcard("#")
    assert not is_wildcard("a+/b#")
