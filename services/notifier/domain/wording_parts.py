"""Small pieces every wording module uses: how a staff name and a spoken code are printed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.contract.gsm7 import to_gsm7

Wording = Callable[[dict[str, Any], str], str]
"""The wording of one template: validated parameters and a language in, the text out."""


def staff_name(name: str) -> str:
    """A roster name as a text prints it: GSM-7 only, whitespace collapsed."""
    return " ".join(to_gsm7(name).split()) or "-"


def spoken_digits(code: str) -> str:
    """``"4821"`` -> ``"4, 8, 2, 1"`` so text-to-speech reads each digit."""
    return ", ".join(code)


def both(en: str, es: str) -> Wording:
    """A fixed text in English and Spanish (no parameters)."""
    return lambda p, lang: es if lang == "es" else en
