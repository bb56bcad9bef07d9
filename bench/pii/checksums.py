"""Checksum and validity rules for the corpus audit: Luhn, IBAN mod-97, US SSN.

Used by make_corpus.py to count generated values that fail their own checksum. Standard library
only; tested in test_pii_bench.py.
"""

from __future__ import annotations

import re


def luhn_valid(value: str) -> bool:
    """True when the digits of ``value`` (spaces and dashes ignored) pass the Luhn check."""
    digits = re.sub(r"[ -]", "", value)
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(value: str) -> bool:
    """True when ``value`` (spaces ignored, any case) is shaped like an IBAN and passes mod-97."""
    iban = value.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", iban):
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def ssn_valid(value: str) -> bool:
    """True for a US SSN written AAA-GG-SSSS, AAA GG SSSS or AAAGGSSSS that follows the SSA's
    rules: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    m = re.fullmatch(r"(\d{3})([- ]?)(\d{2})\2(\d{4})", value.strip())
    if not m:
        return False
    area, group, serial = m.group(1), m.group(3), m.group(4)
    if area in ("000", "666") or area[0] == "9":
        return False
    return group != "00" and serial != "0000"
