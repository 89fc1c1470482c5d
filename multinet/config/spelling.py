"""Did-you-mean for a mistyped key: the one suggestion every validator gives the same way."""

from __future__ import annotations

from collections.abc import Iterable


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """' (did you mean "master"?)' for the closest known key, or '' when none is close."""
    import difflib  # only when a key is unknown: not on every ADD's path

    choices = sorted(set(known))
    by_case = [k for k in choices if k.lower() == word.lower()]
    close = by_case or difflib.get_close_matches(word, choices, n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""
