"""Fitting a text into one SMS segment (160 GSM-7 septets): a name is shortened, a list of codes ends in "+N more".

Pure. Each function takes a ``build`` that makes the whole text from the part that may shrink, and shrinks that
part until the text fits, or until only one character (one code) of it is left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from services.contract.gsm7 import SINGLE_SEGMENT_SEPTETS, septets

MORE = {"en": " +{n} more", "es": " +{n} mas"}
"""What stands for the codes left out of a list, by language."""


def fits(text: str) -> bool:
    return septets(text) <= SINGLE_SEGMENT_SEPTETS


def fit_name(build: Callable[[str], str], name: str) -> str:
    """``build(name)``, shortening ``name`` with ".." until the result fits one segment."""
    text = build(name)
    cut = len(name)
    while not fits(text) and cut > 1:
        cut -= 1
        text = build(name[:cut].rstrip(" ,.;:-") + "..")
    return text


def _listed(codes: Sequence[str], shown: int, more: str) -> str:
    return ", ".join(codes[:shown]) + (more.format(n=len(codes) - shown) if shown < len(codes) else "")


def fit_codes(build: Callable[[str], str], codes: Sequence[str], more: str) -> str:
    """``build(codes joined)``, listing fewer codes (``more``: " +N more") until the result fits one segment."""
    return fit_two(lambda listed, _none: build(listed), codes, (), more)


def fit_two(build: Callable[[str, str], str], first: Sequence[str], second: Sequence[str], more: str) -> str:
    """``build(first joined, second joined)``, listing fewer codes of the longer list until it fits one segment."""
    shown = [len(first), len(second)]
    text = build(_listed(first, shown[0], more), _listed(second, shown[1], more))
    while not fits(text) and max(shown) > 1:
        shown[0 if shown[0] >= shown[1] else 1] -= 1
        text = build(_listed(first, shown[0], more), _listed(second, shown[1], more))
    return text
