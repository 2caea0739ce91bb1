"""SMS texts. They never carry PHI: no name, substance, diagnosis or crisis kind (42 CFR Part 2).

Only a priority, the opaque code, the place to go, and the reply commands.
"""

from __future__ import annotations


def page_text(priority: str, code: str, place: str, distance_km: float, advise_911: bool) -> str:
    prefix = "Call 911 if not done. " if advise_911 else ""
    return (
        f"{priority} response needed near {place} ({distance_km:.1f} km). {prefix}"
        f"Reply Y {code} to accept, N {code} to pass."
    )


def accepted_text(code: str) -> str:
    return f"Accepted {code}. Thank you - details in the app."


def declined_text(code: str) -> str:
    return f"Passed on {code}. Thank you."


def not_understood_text() -> str:
    return "Not understood. Reply Y <code> to accept or N <code> to pass."


def no_open_page_text(code: str | None) -> str:
    return f"No open page {code}." if code else "You have no open page."


def already_closed_text(code: str) -> str:
    return f"{code} is already covered or closed. No action needed."
