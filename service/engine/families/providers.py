"""Providers: the NPIs and the taxonomy code of the claim.

Sources: billing-rules section 7 (NUCC taxonomy, 10 characters: 9 alphanumerics then `X`) and
the CMS NPI standard: 10 digits, the last a Luhn check digit computed over the card-issuer prefix
80840 followed by the first 9 digits (1234567893 is valid).

Decision points:
- Checked: the billing NPI and the claim's rendering NPI (claim-level findings, no line), and a
  line's rendering NPI override (a finding on that line). An empty override is an invalid NPI.
- Only the shape and check digit are checked: whether the NPI is enumerated in NPPES, or the
  taxonomy is in the current NUCC list, is not (no NPPES or NUCC file ships; billing-rules 7
  found no payer rule tying 64490-64495 to taxonomies).
- Taxonomy letters must be upper case, as NUCC publishes them; a missing taxonomy is not flagged.
- Nothing is remembered between claims: an NPI's check digit is summed from two ten-entry
  tables (a digit, a doubled digit), ten look-ups per NPI.
- Like the other issue-4 families it stays silent in a table built without `policies` (a
  hand-built test table), whose catalogue may lack these rule ids.
"""

from __future__ import annotations

from types import MappingProxyType

from service.engine.findings import finding
from service.models.events import Claim, Finding, ServiceLine
from service.ruletable.compiled import RuleTable

__all__ = ["RULE_IDS", "check", "npi_is_valid", "taxonomy_is_valid"]

RULE_IDS: frozenset[str] = frozenset({"NPI_INVALID", "TAXONOMY_INVALID"})


def _luhn(digits: str) -> int:
    """The Luhn sum of `digits`: every second digit from the right doubled (less 9 above 9)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return total


_PREFIX_SUM = _luhn("80840" + "0" * 10)
"""The Luhn contribution of 80840 when 9 digits and a check digit follow it (15 digits).

CMS publishes it as the constant 24 added to the usual Luhn sum of the 10-digit NPI."""
_DIGIT = MappingProxyType({str(d): d for d in range(10)})
_DOUBLED = MappingProxyType({str(d): _luhn(f"{d}0") for d in range(10)})
"""A digit -> its Luhn double (5 -> 1: 10 less 9)."""
_TAXONOMY_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def npi_is_valid(npi: str) -> bool:
    """10 ASCII digits whose last is the Luhn check digit over `80840` + the first 9."""
    if len(npi) != 10:
        return False
    d, p = _DOUBLED, _DIGIT  # 10 digits: the first and every second one after it are doubled
    try:
        total = (
            d[npi[0]] + p[npi[1]] + d[npi[2]] + p[npi[3]] + d[npi[4]]
            + p[npi[5]] + d[npi[6]] + p[npi[7]] + d[npi[8]] + p[npi[9]]
        )
    except KeyError:  # not a digit 0-9
        return False
    return (_PREFIX_SUM + total) % 10 == 0


def taxonomy_is_valid(code: str) -> bool:
    """A NUCC health-care provider taxonomy code shape: 9 of 0-9/A-Z, then `X`."""
    return len(code) == 10 and code[9] == "X" and _TAXONOMY_CHARS.issuperset(code)


def check(claim: Claim, table: RuleTable) -> list[Finding]:
    if table.policies is None:
        return []
    out: list[Finding] = []
    billing = claim.billing_provider_npi
    billing_valid = npi_is_valid(billing)
    if not billing_valid:
        out.append(_npi(table, "billing provider", billing))
    rendering = claim.rendering_provider
    rendering_npi = rendering.npi
    if not (billing_valid if rendering_npi == billing else npi_is_valid(rendering_npi)):
        out.append(_npi(table, "rendering provider", rendering_npi))
    taxonomy = rendering.taxonomy_code
    if taxonomy is not None and not taxonomy_is_valid(taxonomy):
        out.append(_taxonomy(table, taxonomy))
    for line in claim.service_lines:
        npi = line.rendering_provider_npi
        if npi is not None and not npi_is_valid(npi):
            out.append(_npi(table, "rendering provider", npi, line))
    return out


def _shown(value: str) -> str:
    return repr(value if len(value) <= 15 else value[:15] + "...")


def _npi(table: RuleTable, role: str, npi: str, line: ServiceLine | None = None) -> Finding:
    if len(npi) != 10 or not npi.isascii() or not npi.isdigit():
        why = "is not 10 digits"
    else:
        why = "fails the NPI check digit (a typing error is likely)"
    where = "" if line is None else f"Line {line.line_number}: "
    return finding(
        table,
        "NPI_INVALID",
        f"{where}{'T' if line is None else 't'}he {role} NPI {_shown(npi)} {why}; enter the "
        "provider's 10-digit NPI as listed "
        "in NPPES.",
        line,
    )


def _taxonomy(table: RuleTable, code: str) -> Finding:
    return finding(
        table,
        "TAXONOMY_INVALID",
        f"The rendering provider taxonomy code {_shown(code)} is not a NUCC taxonomy code (9 "
        "letters or digits, then X, upper case, e.g. 208VP0014X); enter the code the provider "
        "registered in NPPES.",
    )
