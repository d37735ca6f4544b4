"""Building the verdict event: the last pure step between the engine and the wire.

The clock is an argument: the shell passes `now`, tests pass a fixed instant. So are the limits:
a verdict lists at most `Limits.max_findings` findings, whatever the input (`capped_findings`).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from service.decode import Malformed, Readable, Unreadable, decode
from service.engine import evaluate
from service.engine.findings import finding
from service.limits import DEFAULT_LIMITS, Limits
from service.models.events import ClaimSubmitted, Finding, VerdictEvent
from service.ruletable.compiled import RuleTable

__all__ = [
    "VERDICT_NAMESPACE",
    "capped_findings",
    "judge",
    "judge_malformed",
    "judge_raw",
    "verdict_event",
    "verdict_id",
]

VERDICT_NAMESPACE = uuid.UUID("6f1b7c1e-4a53-4f3c-9d0e-2a7a61c2b6d4")
"""uuid5 namespace of verdict ids; fixed forever so redelivered events keep their verdict id."""

_NAMESPACE_SHA1 = hashlib.sha1(VERDICT_NAMESPACE.bytes, usedforsecurity=False)
"""SHA-1 state after the namespace bytes: each id hashes only its own name on a copy of it."""
_VARIANT = "89ab"
"""RFC 4122 variant: the top two bits of the clock-sequence byte are 10."""


def judge_raw(
    raw: bytes | None, table: RuleTable, *, now: datetime, limits: Limits = DEFAULT_LIMITS
) -> VerdictEvent | Unreadable:
    """One event's bytes to its verdict, or to the reason it is unreadable (a dead letter).

    The one dispatch shared by the Kafka shell and the offline `check` command.
    """
    decoded = decode(raw, limits)
    if isinstance(decoded, Readable):
        return judge(decoded.event, table, now=now, max_findings=limits.max_findings)
    if isinstance(decoded, Malformed):
        return judge_malformed(decoded, table, now=now, max_findings=limits.max_findings)
    return decoded


def judge(
    event: ClaimSubmitted,
    table: RuleTable,
    *,
    now: datetime,
    max_findings: int = DEFAULT_LIMITS.max_findings,
) -> VerdictEvent:
    """The verdict for a readable claim."""
    findings = evaluate(event.claim, table)
    return verdict_event(
        cause=event.event_id,
        claim_id=event.claim.claim_id,
        findings=findings,
        table=table,
        now=now,
        max_findings=max_findings,
    )


def judge_malformed(
    bad: Malformed,
    table: RuleTable,
    *,
    now: datetime,
    max_findings: int = DEFAULT_LIMITS.max_findings,
) -> VerdictEvent:
    """A flagged verdict with one CLAIM_MALFORMED finding per schema problem."""
    # Only the findings a verdict can list are built; the rest are counted.
    shown = bad.problems[:max_findings]
    findings = tuple(
        finding(table, "CLAIM_MALFORMED", f"{path}: {text}", line_number=number)
        for path, text, number in shown
    )
    return verdict_event(
        cause=bad.event_id,
        claim_id=bad.claim_id,
        findings=findings,
        table=table,
        now=now,
        fallback_key=bad.raw_sha256,
        max_findings=max_findings,
        not_built=len(bad.problems) - len(shown),
    )


def verdict_event(
    *,
    cause: str | None,
    claim_id: str,
    findings: tuple[Finding, ...],
    table: RuleTable,
    now: datetime,
    fallback_key: str = "",
    max_findings: int = DEFAULT_LIMITS.max_findings,
    not_built: int = 0,
) -> VerdictEvent:
    """`not_built`: further error findings the caller counted but did not build."""
    flagged = not_built > 0
    for f in findings:
        if f.severity == "error":
            flagged = True
            break
    if not_built or len(findings) > max_findings:
        findings = capped_findings(findings, table, max_findings, not_built=not_built)
    key = f"{cause if cause is not None else 'sha256:' + fallback_key}|{table.digest}"
    # Validated construction: pydantic-core checks the fields in Rust, which is faster than
    # `model_construct`'s Python loop over the fields (Finding instances pass through as is).
    return VerdictEvent(
        event_id=verdict_id(key),
        event_type="claim.flagged" if flagged else "claim.accepted",
        schema_version=1,
        occurred_at=now,
        causation_id=cause,
        claim_id=claim_id,
        verdict="flagged" if flagged else "accepted",
        findings=findings,
        rule_table_version=table.version,
    )


def capped_findings(
    findings: tuple[Finding, ...], table: RuleTable, max_findings: int, *, not_built: int = 0
) -> tuple[Finding, ...]:
    """At most `max_findings`: the first ones, errors before warnings, and one summary finding.

    Errors are kept first so that a flagged verdict always shows an error; the kept findings keep
    their order. The verdict's accepted/flagged state is decided on all findings, before this.
    """
    keep = max_findings - 1
    ranked = sorted(range(len(findings)), key=lambda i: findings[i].severity != "error")
    kept = sorted(ranked[:keep])
    rest = [findings[i] for i in ranked[keep:]]
    errors = not_built + sum(f.severity == "error" for f in rest)
    warnings = len(rest) - (errors - not_built)
    # Always at least two more: one over the cap, and the one the summary takes the place of.
    summary = finding(
        table,
        "FINDINGS_TRUNCATED",
        f"{errors + warnings} more findings ({_count(errors, 'error')}, "
        f"{_count(warnings, 'warning')}) are not listed: a verdict lists at most {max_findings}. "
        "Correct the findings listed and submit the claim again to see the rest.",
    )
    return (*(findings[i] for i in kept), summary)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def verdict_id(key: str) -> str:
    """`str(uuid.uuid5(VERDICT_NAMESPACE, key))`, without building a UUID object.

    A third of the cost: the namespace is hashed once, and the version and variant are written
    into the hex digits directly (a test compares it with `uuid.uuid5` on many keys).
    """
    sha = _NAMESPACE_SHA1.copy()
    sha.update(key.encode())
    h = sha.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"
