"""Building 837P (005010X222A1) files for the intake tests.

Segments are written one a line with `~` terminators; ST/SE, GS/GE and ISA/IEA counts are
computed, so a test breaks exactly what it means to break (by editing the text afterwards).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Line", "Patient", "Sub", "TClaim", "interchange", "transaction"]


@dataclass(frozen=True)
class Line:
    code: str = "64490"
    modifiers: Sequence[str] = ()
    units: str = "1"
    unit_basis: str = "UN"
    charge: str = "425.00"
    pointers: str = "1"
    date: str = "D8*20250304"
    pos: str = ""
    rendering_npi: str | None = None

    def segments(self, number: int) -> list[str]:
        code = ":".join(["HC", self.code, *self.modifiers])
        out = [
            f"LX*{number}",
            f"SV1*{code}*{self.charge}*{self.unit_basis}*{self.units}*{self.pos}**{self.pointers}",
            f"DTP*472*{self.date}" if self.date else "",
        ]
        if self.rendering_npi:
            out.append(f"NM1*82*1*LINE*DOCTOR****XX*{self.rendering_npi}")
        return [s for s in out if s]


@dataclass(frozen=True)
class TClaim:
    claim_id: str
    lines: Sequence[Line] = (Line(),)
    pos: str = "11"
    diagnoses: Sequence[str] = ("M47812", "M542")
    rendering: tuple[str, str] | None = None
    """(NPI, taxonomy) of loop 2310B."""

    def segments(self) -> list[str]:
        charge = "100.00"
        dx = "*".join(
            f"{'ABK' if i == 0 else 'ABF'}:{code}" for i, code in enumerate(self.diagnoses)
        )
        out = [f"CLM*{self.claim_id}*{charge}***{self.pos}:B:1*Y*A*Y*Y", f"HI*{dx}"]
        if self.rendering:
            npi, taxonomy = self.rendering
            out += [f"NM1*82*1*RENDER*DOCTOR****XX*{npi}", f"PRV*PE*PXC*{taxonomy}"]
        for number, line in enumerate(self.lines, 1):
            out += line.segments(number)
        return out


@dataclass(frozen=True)
class Patient:
    """A dependent (loop 2000C) with the claims under it."""

    birth_date: str
    claims: Sequence[TClaim]


@dataclass(frozen=True)
class Sub:
    member_id: str = "MBR0001X"
    birth_date: str = "19510714"
    payer_id: str = "00882"
    claims: Sequence[TClaim] = ()
    dependents: Sequence[Patient] = field(default_factory=tuple)


def transaction(
    subscribers: Sequence[Sub],
    *,
    st02: str = "0001",
    billing_npi: str = "1234567893",
    taxonomy: str = "208VP0014X",
    created: str = "20250304*1502",
) -> list[str]:
    body = [
        f"ST*837*{st02}*005010X222A1",
        f"BHT*0019*00*{st02}*{created}*CH",
        "NM1*41*2*TEST BILLING SERVICE*****46*TGJ23",
        "PER*IC*CONTACT*TE*5555551234",
        "NM1*40*2*TEST RECEIVER*****46*66783JJT",
        "HL*1**20*1",
        f"PRV*BI*PXC*{taxonomy}",
        f"NM1*85*2*TEST CLINIC*****XX*{billing_npi}",
        "N3*1 MAIN ST",
        "N4*MIAMI*FL*331110000",
        "REF*EI*587654321",
    ]
    hl = 1
    for sub in subscribers:
        hl += 1
        sub_hl = hl
        has_children = 1 if sub.dependents else 0
        body += [
            f"HL*{sub_hl}*1*22*{has_children}",
            f"SBR*P*{'18' if not sub.dependents else ''}*GRP01******CI",
            f"NM1*IL*1*DOE*JANE****MI*{sub.member_id}",
            "N3*2 MAIN ST",
            "N4*MIAMI*FL*33111",
            f"DMG*D8*{sub.birth_date}*F",
            f"NM1*PR*2*TEST PAYER*****PI*{sub.payer_id}",
        ]
        for claim in sub.claims:
            body += claim.segments()
        for patient in sub.dependents:
            hl += 1
            body += [
                f"HL*{hl}*{sub_hl}*23*0",
                "PAT*19",
                "NM1*QC*1*DOE*JOHN",
                "N3*2 MAIN ST",
                "N4*MIAMI*FL*33111",
                f"DMG*D8*{patient.birth_date}*M",
            ]
            for claim in patient.claims:
                body += claim.segments()
    body.append(f"SE*{len(body) + 1}*{st02}")
    return body


def interchange(
    transactions: Sequence[list[str]],
    *,
    control: str = "000000101",
    sender: str = "SUBMITTER01",
    version: str = "005010X222A1",
) -> str:
    segments = [
        f"ISA*00*{'':10}*00*{'':10}*ZZ*{sender:<15}*ZZ*{'RECEIVER01':<15}*250304*1502*^*00501*"
        f"{control}*0*T*:",
        f"GS*HC*{sender}*RECEIVER01*20250304*1502*101*X*{version}",
    ]
    for body in transactions:
        segments += body
    segments += [f"GE*{len(transactions)}*101", f"IEA*1*{control}"]
    return "".join(f"{s}~\n" for s in segments)
