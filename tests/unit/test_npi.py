"""NPI check digit and taxonomy shape, as the providers family applies them.

The check digit is tested against an independent formulation: the plain Luhn check over the
15-digit card number `80840` + NPI (what the CMS standard defines), rather than the shortcut
(the constant 24 for the prefix) the family uses.
"""

from __future__ import annotations

import random

import pytest

from service.engine.families.providers import (
    _PREFIX_SUM,
    npi_is_valid,
    taxonomy_is_valid,
)


def _luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number]
    checksum = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2
            if d > 9:
                d = d // 10 + d % 10
        checksum += d
    return checksum % 10 == 0


def test_the_cms_example_npi_is_valid() -> None:
    assert npi_is_valid("1234567893")
    assert not npi_is_valid("1234567890")


def test_the_prefix_80840_adds_the_constant_cms_publishes() -> None:
    assert _PREFIX_SUM == 24


def test_exactly_one_check_digit_completes_each_base() -> None:
    rng = random.Random(20250304)
    for _ in range(300):
        base = f"{rng.randrange(10**8, 10**9):09d}"
        valid = [d for d in "0123456789" if npi_is_valid(base + d)]
        assert len(valid) == 1, base


def test_agrees_with_luhn_over_the_80840_card_number() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        npi = f"{rng.randrange(10**9, 10**10)}"
        assert npi_is_valid(npi) == _luhn_ok("80840" + npi), npi


@pytest.mark.parametrize(
    "npi",
    ["123456789", "12345678930", "", "12345678A3", " 1234567893", "123456789\uff13", "\u0661" * 10],
)
def test_not_ten_ascii_digits_is_invalid(npi: str) -> None:
    assert not npi_is_valid(npi)


@pytest.mark.parametrize("code", ["208VP0014X", "207LP2900X", "363L00000X", "2081P2900X"])
def test_nucc_taxonomy_codes_are_valid(code: str) -> None:
    assert taxonomy_is_valid(code)


@pytest.mark.parametrize(
    "code", ["208VP0014", "208VP00141", "208vp0014x", "208VP0014XX", "208-P0014X", ""]
)
def test_malformed_taxonomy_codes_are_invalid(code: str) -> None:
    assert not taxonomy_is_valid(code)
