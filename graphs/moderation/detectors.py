"""Deterministic PII detectors: emails, phone numbers, card numbers, IBANs, IP addresses.

Each detector returns spans (start, end) into the text with the matched value, checked beyond
the pattern where a checksum exists (Luhn for cards, mod-97 for IBANs) so that look-alike
numbers are not flagged. Patterns require word boundaries: an email must not be glued inside a
longer word.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from typing_extensions import TypedDict


class Span(TypedDict):
    """A detected value: its type, where it is, and the exact text."""

    type: str
    start: int
    end: int
    text: str


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9_.%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w@-])"
)
# Not a prefix or suffix of a longer digit run (a Luhn-invalid card is no phone number).
_PHONE = re.compile(
    r"(?<![\w+])(?<!\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d(?:[ .-]?\d){6,13}"
    r"(?![ .-]?\d)(?!\w)"
)
_DATE = re.compile(r"^(?:\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4})$")
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_IBAN = re.compile(r"(?<!\w)[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?!\w)")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string (card numbers)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """The ISO 13616 mod-97 check of an IBAN (spaces ignored)."""
    compact = iban.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def _spans(
    kind: str, pattern: re.Pattern[str], text: str, keep: Callable[[str], bool]
) -> list[Span]:
    return [
        {"type": kind, "start": match.start(), "end": match.end(), "text": match.group(0)}
        for match in pattern.finditer(text)
        if keep(match.group(0))
    ]


def emails(text: str) -> list[Span]:
    """Email addresses."""
    return _spans("email", _EMAIL, text, lambda value: True)


def cards(text: str) -> list[Span]:
    """Payment card numbers (13-19 digits) that pass the Luhn check."""

    def keep(value: str) -> bool:
        digits = re.sub(r"\D", "", value)
        return 13 <= len(digits) <= 19 and luhn_valid(digits)

    return _spans("card", _CARD, text, keep)


def ibans(text: str) -> list[Span]:
    """IBANs that pass the mod-97 check."""
    return _spans("iban", _IBAN, text, iban_valid)


def ip_addresses(text: str) -> list[Span]:
    """IPv4 and IPv6 addresses that parse as such."""

    def parses(value: str) -> bool:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return False
        return True

    return _spans("ip", _IPV4, text, parses) + _spans("ip", _IPV6, text, parses)


def phones(text: str) -> list[Span]:
    """Phone numbers: 7 to 15 digits, optionally with a country code and separators."""

    def keep(value: str) -> bool:
        digits = re.sub(r"\D", "", value)
        return 7 <= len(digits) <= 15 and not _DATE.match(value)

    return _spans("phone", _PHONE, text, keep)


# Order matters: a span claimed by an earlier detector is not reported again by a later one
# (a card number also looks like a phone number).
DETECTORS: tuple[Callable[[str], list[Span]], ...] = (emails, ibans, cards, ip_addresses, phones)


def detect(text: str) -> list[Span]:
    """Every deterministic finding, without overlaps, in text order."""
    found: list[Span] = []
    # Digits inside an IBAN-shaped token with a bad checksum are part of that token, not a
    # card or phone number of their own.
    shaped = [match.span() for match in _IBAN.finditer(text)]
    for detector in DETECTORS:
        for span in detector(text):
            if any(span["start"] < f["end"] and f["start"] < span["end"] for f in found):
                continue
            if span["type"] != "iban" and any(
                start <= span["start"] and span["end"] <= end for start, end in shaped
            ):
                continue
            found.append(span)
    return sorted(found, key=lambda span: span["start"])
