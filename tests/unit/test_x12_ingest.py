"""`claims-validator ingest` on 837P files the tests build: mapping, determinism, broken files.

What a user sees: events on stdout (JSON Lines), JSON error objects on stderr, the exit code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.cli import main
from service.models.events import ClaimSubmitted
from tests.unit.x12_files import Line, Patient, Sub, TClaim, interchange, transaction

ROOT = Path(__file__).parents[2]


def write(tmp_path: Path, text: str, name: str = "claims.837") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def ingest(
    capsysbinary: pytest.CaptureFixture[bytes], *args: str | Path
) -> tuple[int, list[ClaimSubmitted], list[dict[str, Any]]]:
    code = main(["ingest", *map(str, args)])
    captured = capsysbinary.readouterr()
    events = [ClaimSubmitted.model_validate_json(line) for line in captured.out.splitlines()]
    errors = [json.loads(line) for line in captured.err.splitlines()]
    return code, events, errors


def three_claims() -> str:
    return interchange(
        [
            transaction(
                [
                    Sub(
                        member_id="MBR0001X",
                        payer_id="00882",
                        claims=[
                            TClaim(
                                "C1",
                                lines=[
                                    Line(),
                                    Line("64491", ("50", "KX"), pos="22",
                                         rendering_npi="1558444216"),
                                ],
                            )
                        ],
                    ),
                    Sub(
                        member_id="MBR0002X",
                        payer_id="60054",
                        claims=[TClaim("C2", rendering=("1558444216", "207L00000X"))],
                        dependents=[Patient("20100101", [TClaim("C3", pos="24")])],
                    ),
                ]
            )
        ]
    )


def test_multi_claim_file(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, events, errors = ingest(capsysbinary, write(tmp_path, three_claims()))
    assert (0, []) == (code, errors)
    assert ["C1", "C2", "C3"] == [e.claim.claim_id for e in events]
    c1, c2, c3 = (e.claim for e in events)
    assert ["MBR0001X", "MBR0002X", "MBR0002X"] == [c.patient.member_id for c in (c1, c2, c3)]
    assert ["1951-07-14", "1951-07-14", "2010-01-01"] == [
        c.patient.birth_date.isoformat() for c in (c1, c2, c3)
    ]
    assert ["00882", "60054", "60054"] == [c.payer_id for c in (c1, c2, c3)]
    second = c1.service_lines[1]
    assert ("64491", ("50", "KX"), "22", "1558444216") == (
        second.procedure_code, second.modifiers, second.place_of_service,
        second.rendering_provider_npi,
    )
    assert ("11", None) == (c1.service_lines[0].place_of_service,
                            c1.service_lines[0].rendering_provider_npi)
    assert ("1558444216", "207L00000X") == (c2.rendering_provider.npi,
                                            c2.rendering_provider.taxonomy_code)
    assert ("1234567893", "208VP0014X") == (c3.rendering_provider.npi,
                                            c3.rendering_provider.taxonomy_code)
    assert "24" == c3.service_lines[0].place_of_service
    assert ("M47812", "M542") == c1.diagnosis_codes
    assert {"2025-03-04T15:02:00+00:00"} == {e.occurred_at.isoformat() for e in events}


def test_event_ids_are_the_same_on_every_run(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = write(tmp_path, three_claims())
    _, first, _ = ingest(capsysbinary, path)
    _, again, _ = ingest(capsysbinary, path)
    assert [e.model_dump() for e in first] == [e.model_dump() for e in again]
    assert 3 == len({e.event_id for e in first})
    other = write(tmp_path, three_claims().replace("000000101", "000000102"), "other.837")
    _, resent, _ = ingest(capsysbinary, other)
    assert not {e.event_id for e in first} & {e.event_id for e in resent}


def test_payer_map(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    mapping = tmp_path / "payers.csv"
    mapping.write_text("x12_payer_id,payer_id\n00882,MEDICARE\n")
    code, events, _ = ingest(capsysbinary, "--payer-map", mapping, write(tmp_path, three_claims()))
    assert 0 == code
    # Mapped where listed, passed through as written where not.
    assert ["MEDICARE", "60054", "60054"] == [e.claim.payer_id for e in events]


def test_bad_payer_map_stops_before_reading(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    mapping = tmp_path / "payers.csv"
    mapping.write_text("payer,id\n00882,MEDICARE\n")
    code = main(["ingest", "--payer-map", str(mapping), str(write(tmp_path, three_claims()))])
    captured = capsysbinary.readouterr()
    assert (3, b"") == (code, captured.out)
    assert f"{mapping}: the header must be x12_payer_id,payer_id" in captured.err.decode()


def test_bad_segment_rejects_only_its_claim(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    text = three_claims()
    lines = text.splitlines()
    # Claim C2's only line: a unit count that is not a number.
    index = next(i for i, s in enumerate(lines) if s.startswith("CLM*C2"))
    sv1 = next(i for i in range(index, len(lines)) if lines[i].startswith("SV1*"))
    lines[sv1] = lines[sv1].replace("*UN*1*", "*UN*X*")
    code, events, errors = ingest(capsysbinary, write(tmp_path, "\n".join(lines) + "\n"))
    assert 1 == code
    assert ["C1", "C3"] == [e.claim.claim_id for e in events]
    assert [
        {
            "error": "x12-error", "source": str(tmp_path / "claims.837"), "segment": sv1 + 1,
            "segment_id": "SV1", "level": "element", "code": "6",
            "message": "SV104: invalid character in data element", "element": "SV104",
        },
        {
            "error": "claim-rejected", "source": str(tmp_path / "claims.837"),
            "segment": index + 1, "claim_id": "C2",
            "detail": f"X12 errors in the claim or its envelope, the first at segment {sv1 + 1}",
        },
    ] == errors


def test_missing_service_date_on_the_last_line(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    # The gap is noticed at SE, after the claim: it still belongs to the claim, not the set.
    claims = [TClaim("C1"), TClaim("C2", lines=[Line(), Line(date="")])]
    text = interchange([transaction([Sub(claims=claims)])])
    code, events, errors = ingest(capsysbinary, write(tmp_path, text))
    assert 1 == code
    assert ["C1"] == [e.claim.claim_id for e in events]
    missing = [e for e in errors if e["error"] == "x12-error"]
    assert [("SE", "3", 'Mandatory segment "Date - Service Date" (DTP) missing')] == [
        (e["segment_id"], e["code"], e["message"]) for e in missing
    ]
    assert ["C2"] == [e["claim_id"] for e in errors if e["error"] == "claim-rejected"]


def test_wrong_se_count_rejects_every_claim_of_the_set(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    good = transaction([Sub(claims=[TClaim("G1")])], st02="0002")
    bad = transaction([Sub(claims=[TClaim("B1"), TClaim("B2")])], st02="0001")
    bad[-1] = bad[-1].replace(f"SE*{len(bad)}*", f"SE*{len(bad) + 5}*")
    code, events, errors = ingest(capsysbinary, write(tmp_path, interchange([bad, good])))
    assert 1 == code
    assert ["G1"] == [e.claim.claim_id for e in events]
    (envelope,) = [e for e in errors if e["error"] == "x12-error"]
    assert ("SE", "transaction", "4") == (envelope["segment_id"], envelope["level"],
                                          envelope["code"])
    assert ["B1", "B2"] == [e["claim_id"] for e in errors if e["error"] == "claim-rejected"]


def test_truncated_file_rejects_the_interchange(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    text = three_claims()
    cut = text[: text.index("GE*")]  # no GE, no IEA
    code, events, errors = ingest(capsysbinary, write(tmp_path, cut))
    assert (1, []) == (code, events)
    envelope = [(e["level"], e["code"], e["segment_id"]) for e in errors
                if e["error"] == "x12-error"]
    assert {("group", "3", None), ("interchange", "023", None)} == set(envelope)
    assert ["C1", "C2", "C3"] == [e["claim_id"] for e in errors if e["error"] == "claim-rejected"]


def test_not_x12_is_reported_and_the_next_file_still_read(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    junk = write(tmp_path, "this is not an X12 file\n", "junk.837")
    missing = tmp_path / "missing.837"
    good = write(tmp_path, three_claims())
    code, events, errors = ingest(capsysbinary, junk, missing, good)
    assert 1 == code
    assert 3 == len(events)
    assert [
        ("x12-unreadable", str(junk)),
        ("file-unreadable", str(missing)),
    ] == [(e["error"], e["source"]) for e in errors]
    assert 1 == errors[0]["segment"]


def test_another_implementation_guide_is_refused(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    text = three_claims().replace("*X*005010X222A1~", "*X*005010X223A2~")
    code, events, errors = ingest(capsysbinary, write(tmp_path, text))
    assert (1, []) == (code, events)
    assert {
        "error": "x12-error", "source": str(tmp_path / "claims.837"), "segment": 2,
        "segment_id": "GS", "level": "group", "code": "GS08",
        "message": "GS08 005010X223A2 is not 005010X222A1",
    } in errors
    assert ["C1", "C2", "C3"] == [e["claim_id"] for e in errors if e["error"] == "claim-rejected"]


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        (Line(unit_basis="MJ", units="30"), "line 1: SV103 unit basis MJ is not UN"),
        (Line(units="1.5"), "line 1: SV104 1.5 is not a whole number of units"),
    ],
)
def test_valid_x12_that_the_event_cannot_carry(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], line: Line, detail: str
) -> None:
    text = interchange([transaction([Sub(claims=[TClaim("C1", lines=[line]), TClaim("C2")])])])
    code, events, errors = ingest(capsysbinary, write(tmp_path, text))
    assert 1 == code
    assert ["C2"] == [e.claim.claim_id for e in events]
    assert [("claim-unmappable", "C1", detail)] == [
        (e["error"], e["claim_id"], e["detail"]) for e in errors
    ]


def test_errors_never_show_member_ids_or_birth_dates(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    member, birth = "ZQ9381746X", "19511399"  # an impossible date: pyx12 reports DMG02
    text = interchange([transaction([Sub(member_id=member, birth_date=birth,
                                         claims=[TClaim("C1")])])])
    text = text.replace(f"MI*{member}~", f"MI*{member}{'9' * 80}~")  # too long as well
    code, events, errors = ingest(capsysbinary, write(tmp_path, text))
    assert (1, []) == (code, events)
    elements = {e.get("element") for e in errors}
    assert {"DMG02", "NM109"} <= elements
    raw = json.dumps(errors)
    assert member not in raw
    assert birth not in raw
    assert "1951" not in raw


def test_the_events_are_what_check_reads(tmp_path: Path) -> None:
    path = write(tmp_path, three_claims())
    ingested = subprocess.run(
        [sys.executable, "-m", "service", "ingest", str(path)],
        capture_output=True, cwd=ROOT, timeout=120, check=False,
    )
    assert (0, b"") == (ingested.returncode, ingested.stderr)
    checked = subprocess.run(
        [sys.executable, "-m", "service", "check"],
        input=ingested.stdout, capture_output=True, cwd=ROOT, timeout=120, check=False,
    )
    assert (0, b"") == (checked.returncode, checked.stderr)
    verdicts = [json.loads(line) for line in checked.stdout.splitlines()]
    assert ["C1", "C2", "C3"] == [v["claim_id"] for v in verdicts]


def test_without_pyx12_the_command_says_what_to_install(tmp_path: Path) -> None:
    # A None entry in sys.modules makes `import pyx12` fail as if it were not installed.
    script = (
        "import sys; sys.modules['pyx12'] = None\n"
        "from service.cli import main\n"
        f"sys.exit(main(['ingest', {str(write(tmp_path, three_claims()))!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, cwd=ROOT, timeout=120, check=False
    )
    assert (3, b"") == (result.returncode, result.stdout)
    assert "pip install 'claims-validator[x12]'" in result.stderr.decode()


def test_a_library_failure_mid_file_loses_no_claim_silently(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.intake import ingest as ingest_module
    from service.intake.x12_read import read_segments

    def failing(path: Path) -> Iterator[Any]:
        for item in read_segments(path):
            if getattr(item, "segment_id", "") == "SE":
                raise KeyError("GRP01 MBR0001X")  # as if pyx12 choked on a segment
            yield item

    monkeypatch.setattr(ingest_module, "read_segments", failing)
    path = write(tmp_path, three_claims())
    code, events, errors = ingest(capsysbinary, path)
    assert (1, []) == (code, events)
    assert "pyx12 failed on this file: KeyError" == errors[0]["detail"]
    assert "MBR0001X" not in json.dumps(errors)
    assert ["C1", "C2", "C3"] == [e["claim_id"] for e in errors if e["error"] == "claim-rejected"]


def test_line_breaks_and_separators_do_not_change_the_events(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    text = three_claims()
    # One line, CRLF, and other element/component separators (declared in the ISA).
    variants = [
        text.replace("\n", ""),
        text.replace("\n", "\r\n"),
        text.replace("*", "|").replace(":", ">"),
    ]
    _, expected, _ = ingest(capsysbinary, write(tmp_path, text))
    for number, variant in enumerate(variants):
        code, events, errors = ingest(capsysbinary, write(tmp_path, variant, f"v{number}.837"))
        assert (0, []) == (code, errors)
        assert [e.model_dump() for e in expected] == [e.model_dump() for e in events]


def test_a_second_interchange_in_a_file_is_never_lost(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    first = interchange([transaction([Sub(claims=[TClaim("A1")])])], control="000000201")
    second = interchange([transaction([Sub(claims=[TClaim("B1")])])], control="000000202")
    code, events, errors = ingest(capsysbinary, write(tmp_path, first + second))
    emitted = [e.claim.claim_id for e in events]
    rejected = [e["claim_id"] for e in errors if e["error"] == "claim-rejected"]
    assert "A1" in emitted
    # pyx12's reader counts IEA per file, so it reports the second IEA as one too many and the
    # claims of that interchange are rejected (README): reported, not dropped.
    assert ["A1", "B1"] == sorted(emitted + rejected)
    assert code == (1 if rejected else 0)


def test_stray_text_in_a_claim_is_reported_without_repeating_it(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    text = three_claims().replace("CLM*C2*", "Jane Doe born 1951-07-14~\nCLM*C2*", 1)
    code, events, errors = ingest(capsysbinary, write(tmp_path, text))
    assert 1 == code
    assert "C2" not in [e.claim.claim_id for e in events]
    assert "?" in {e["segment_id"] for e in errors if e["error"] == "x12-error"}
    raw = json.dumps(errors)
    assert "Jane" not in raw
    assert "1951" not in raw
    # Every claim is accounted for: emitted, or rejected with the position of its CLM.
    rejected = [e["claim_id"] for e in errors if e["error"] == "claim-rejected"]
    assert ["C1", "C2", "C3"] == sorted([e.claim.claim_id for e in events] + rejected)
