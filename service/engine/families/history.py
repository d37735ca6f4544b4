"""Cross-claim rules: the same claim twice, the same service again, frequency limits.

A pure function of (claim, the member's `History`, table): the shell fetches the history from the
claim-history database and hands it in; nothing here reads a clock or a database. Sources:
billing-rules section 5.5 (F-FREQ-INJ, F-FREQ-RFA, session = all procedures of one calendar day)
and the frequency-limit data in `frequency_limits.yaml`.

Decision points:
- `DUPLICATE_CLAIM`: the claim's `content_key` (billing NPI and every line's code, modifiers,
  date, units, place of service and charge, lines in any order) equals an earlier claim's; the
  payer and member are equal by construction (a history is one payer's member's). One finding,
  naming the earliest such claim.
- `DUPLICATE_LINE`: a line's (code, date, rendering NPI) was billed on an earlier claim, and the
  line carries none of the repeat/distinct modifiers (76, 77, 91, 59, XE, XP, XS, XU). A claim
  duplicating an earlier claim as a whole is reported once, not line by line.
- `FREQUENCY_LIMIT`: sessions (distinct dates) of a policy's codes per spinal region, counted
  over every window of `window_days` consecutive days that holds the line's date; sessions of
  the claim itself count too. Over the limit: one finding on the first line of that date and
  region, naming the other sessions' dates and claim ids. With `apart`, diagnostic lines (the
  policy's diagnostic modifier) and therapeutic lines are counted separately.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, timedelta

from service.engine.findings import finding
from service.models.events import Claim, Finding, ServiceLine
from service.models.history import History, PriorClaim, PriorLine
from service.ruletable.compiled import FrequencyLimit, RuleTable

__all__ = ["REPEAT_MODIFIERS", "RULE_IDS", "check", "content_key", "prior_claim", "rendering_npi"]

RULE_IDS: frozenset[str] = frozenset({"DUPLICATE_CLAIM", "DUPLICATE_LINE", "FREQUENCY_LIMIT"})

REPEAT_MODIFIERS: frozenset[str] = frozenset({"76", "77", "91", "59", "XE", "XP", "XS", "XU"})
"""Repeat procedure (76, 77), repeat test (91), distinct procedural service (59, X{EPSU})."""


def content_key(claim: Claim) -> str:
    """A digest of what makes two submissions the same claim (see `DUPLICATE_CLAIM`)."""
    lines = sorted(
        "\x1f".join(
            (
                line.procedure_code,
                ",".join(sorted(line.modifiers)),
                line.service_date.isoformat(),
                str(line.units),
                line.place_of_service,
                format(line.charge_amount.normalize(), "f"),
            )
        )
        for line in claim.service_lines
    )
    text = "\x1e".join((claim.billing_provider_npi, *lines))
    return hashlib.sha256(text.encode()).hexdigest()


def rendering_npi(claim: Claim, line: ServiceLine) -> str:
    return line.rendering_provider_npi or claim.rendering_provider.npi


def prior_claim(claim: Claim, sequence: int) -> PriorClaim:
    """What history keeps of `claim` once stored as the `sequence`-th claim."""
    return PriorClaim(
        claim_id=claim.claim_id,
        sequence=sequence,
        content_key=content_key(claim),
        lines=tuple(
            PriorLine(
                procedure_code=line.procedure_code,
                modifiers=tuple(line.modifiers),
                service_date=line.service_date,
                units=line.units,
                place_of_service=line.place_of_service,
                rendering_npi=rendering_npi(claim, line),
            )
            for line in claim.service_lines
        ),
    )


def check(claim: Claim, history: History, table: RuleTable) -> list[Finding]:
    out: list[Finding] = []
    prior = sorted(history.claims, key=lambda c: c.sequence)
    if prior:
        key = history.content_key if history.content_key is not None else content_key(claim)
        for earlier in prior:
            if earlier.content_key == key and earlier.claim_id != claim.claim_id:
                out.append(
                    finding(
                        table,
                        "DUPLICATE_CLAIM",
                        f"Claim {claim.claim_id} repeats claim {earlier.claim_id}: the same "
                        "payer, member, billing provider and lines; do not send a claim again "
                        f"under a new claim id (send a correction under {earlier.claim_id}).",
                    )
                )
                break
        out += _duplicate_lines(claim, prior, key, table)
    limits = table.frequency.get(claim.payer_id) if table.frequency else None
    if limits:
        for limit in limits:
            out += _frequency(claim, prior, limit, table)
    return out


def _duplicate_lines(
    claim: Claim, prior: list[PriorClaim], key: str, table: RuleTable
) -> list[Finding]:
    billed: dict[tuple[str, date, str], str] = {}
    for earlier in prior:
        # A claim this one duplicates as a whole is reported once, as DUPLICATE_CLAIM.
        if earlier.content_key == key or earlier.claim_id == claim.claim_id:
            continue
        for p in earlier.lines:
            billed.setdefault((p.procedure_code, p.service_date, p.rendering_npi), earlier.claim_id)
    out: list[Finding] = []
    if not billed:
        return out
    for line in claim.service_lines:
        npi = rendering_npi(claim, line)
        earlier_id = billed.get((line.procedure_code, line.service_date, npi))
        if earlier_id is None or REPEAT_MODIFIERS.intersection(line.modifiers):
            continue
        out.append(
            finding(
                table,
                "DUPLICATE_LINE",
                f"Line {line.line_number}: {line.procedure_code} on {line.service_date} by "
                f"rendering NPI {npi} was already billed for this member on claim {earlier_id}; "
                "remove the line, or add the modifier that says it was a repeat (76, 77, 91) or "
                "a distinct service (59, XE, XP, XS, XU).",
                line,
            )
        )
    return out


Group = tuple[str, bool | None]
"""(spinal region, diagnostic?) — the second part is None when counted together."""


def _groups(limit: FrequencyLimit, code: str, modifiers: Iterable[str]) -> Group | None:
    region = limit.regions.get(code)
    if region is None:
        return None
    if not limit.apart:
        return (region, None)
    return (region, limit.diagnostic_modifier in modifiers)


def _frequency(
    claim: Claim, prior: list[PriorClaim], limit: FrequencyLimit, table: RuleTable
) -> list[Finding]:
    # Sessions per group: date -> claim ids with lines of the group on that date.
    sessions: dict[Group, dict[date, list[str]]] = {}
    current: dict[tuple[Group, date], ServiceLine] = {}
    for line in claim.service_lines:
        group = _groups(limit, line.procedure_code, line.modifiers)
        if group is None or not limit.in_effect(line.service_date):
            continue
        ids = sessions.setdefault(group, {}).setdefault(line.service_date, [])
        if claim.claim_id not in ids:
            ids.append(claim.claim_id)
        current.setdefault((group, line.service_date), line)
    if not current:
        return []
    for earlier in prior:
        for p in earlier.lines:
            group = _groups(limit, p.procedure_code, p.modifiers)
            if group is None or group not in sessions or not limit.in_effect(p.service_date):
                continue
            ids = sessions[group].setdefault(p.service_date, [])
            if earlier.claim_id not in ids:
                ids.append(earlier.claim_id)
    out: list[Finding] = []
    span = timedelta(days=limit.window_days - 1)
    for (group, day), line in sorted(current.items(), key=lambda kv: kv[1].line_number):
        dates = sorted(sessions[group])
        worst: list[date] = []
        for start in dates:
            if start > day:
                break
            if start < day - span:
                continue
            inside = [d for d in dates if start <= d <= start + span]
            if len(inside) > len(worst):
                worst = inside
        if len(worst) <= limit.max_sessions:
            continue
        others = "; ".join(
            f"{d} ({', '.join(sessions[group][d])})" for d in worst if d != day
        )
        region, diagnostic = group
        kind = "" if diagnostic is None else (" diagnostic" if diagnostic else " therapeutic")
        out.append(
            finding(
                table,
                "FREQUENCY_LIMIT",
                f"Line {line.line_number}: {len(worst)}{kind} sessions of {limit.title} in the "
                f"{region} region within {limit.window_days} days, over the limit of "
                f"{limit.max_sessions} ({limit.policy_id}); the other sessions: {others}; "
                "check the patient's earlier sessions before billing another.",
                line,
            )
        )
    return out
