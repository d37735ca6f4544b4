"""The what-if page in a real headless browser: Debian's Chromium driven by Playwright.

Against `claims-validator web` as a real process: load the page, judge a sample claim, see its
findings with their meaning, what to do and source, fix the claim in the lines table, judge
it again from the keyboard, and see it accepted; open an 837P file and see each claim's verdict.
Screenshots go to .cache/artifacts/.
Chromium comes from Debian (`scripts/env.sh: ensure_chromium`); Playwright never downloads one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.service.test_api_x12 import broken, four_claims
from tests.web_process import WebProcess, web_process

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / ".cache" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def web() -> Iterator[WebProcess]:
    with web_process() as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), (
        "the browser tests need Debian's Chromium: apt-get install chromium "
        "(scripts/test.sh does it when run as root)"
    )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, web: WebProcess) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.goto(web.url)
    expect(opened.locator("body")).to_have_attribute("data-ready", "true")
    yield opened
    context.close()


def _screenshot(page: Page, name: str) -> Path:
    """The verdict at the top of the window, as a user sees it after judging."""
    page.locator("#verdict-heading").evaluate("h => h.scrollIntoView()")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def test_judge_a_sample_fix_it_in_place_and_see_it_accepted(page: Page) -> None:
    page.get_by_label("Start from a sample claim").select_option("CLM-SAMPLE-007")
    page.get_by_role("button", name="Load sample").click()
    expect(page.get_by_label("Claim JSON")).to_have_value(re.compile('"CLM-SAMPLE-007"'))
    page.get_by_role("button", name="Judge claim").click()

    status = page.get_by_role("status")
    expect(status).to_have_text("Flagged: CLM-SAMPLE-007 has 2 error findings.")
    findings = page.locator("#findings-table tbody tr")
    expect(findings).to_have_count(2)
    first = findings.first
    expect(first).to_contain_text("POS_NOT_ALLOWED")
    expect(first).to_contain_text("place of service 02")  # what is wrong, on this claim
    expect(first).to_contain_text("Check where the service was performed")  # what to do
    expect(first).to_contain_text("CMS Place of Service code set")  # its source
    _screenshot(page, "what-if-flagged.png")

    page.get_by_label("Line 1 place of service").fill("11")
    cell = page.get_by_label("Line 2 place of service")
    cell.fill("11")
    claim_json = page.get_by_label("Claim JSON")
    expect(claim_json).not_to_have_value(re.compile('"place_of_service": "02"'))
    cell.press("Control+Enter")

    expect(status).to_have_text("Accepted: CLM-SAMPLE-007 has no error findings.")
    expect(page.locator("#findings-table")).to_have_count(0)
    expect(page.locator("#lines-table tbody tr")).to_have_count(2)
    _screenshot(page, "what-if-accepted.png")


def test_a_malformed_claim_shows_each_field_and_line(page: Page) -> None:
    page.get_by_label("Start from a sample claim").select_option("CLM-SAMPLE-014")
    page.get_by_role("button", name="Load sample").click()
    page.get_by_label("Claim JSON").press("Control+Enter")

    expect(page.get_by_role("status")).to_contain_text("Malformed: the claim breaks the")
    rows = page.locator("#findings-table tbody tr")
    expect(rows.first).to_contain_text("CLAIM_MALFORMED")
    expect(rows.first).to_contain_text("claim.service_lines[0].units")


def test_a_claim_file_can_be_opened_and_judged(page: Page) -> None:
    lines = (REPO / "samples" / "claims.jsonl").read_bytes().splitlines()
    third = next(line for line in lines if b"CLM-SAMPLE-003" in line)
    page.get_by_label("or open a JSON file").set_input_files(
        files=[{"name": "claims.jsonl", "mimeType": "application/json", "buffer": third}]
    )
    expect(page.get_by_role("status")).to_have_text("Opened claims.jsonl; judge it when ready.")
    page.get_by_role("button", name="Judge claim").click()

    expect(page.get_by_role("status")).to_have_text(
        "Flagged: CLM-SAMPLE-003 has 1 error finding."
    )
    expect(page.locator("#findings-table tbody")).to_contain_text("ADDON_WITHOUT_PRIMARY")


def test_unreadable_text_says_why_without_a_verdict(page: Page) -> None:
    page.get_by_label("Claim JSON").fill("this is not a claim")
    page.get_by_role("button", name="Judge claim").click()

    expect(page.get_by_role("status")).to_contain_text("Not judged (400 not-json)")
    expect(page.locator("#findings-table")).to_have_count(0)


def test_the_rule_catalogue_can_be_searched_and_filtered(page: Page) -> None:
    rows = page.locator("#rules tbody tr")
    total = rows.count()
    assert total > 10

    page.get_by_label("Search rules").fill("modifier 50")
    expect(rows.first).to_be_visible()
    assert 0 < rows.count() < total
    expect(page.locator("#rules tbody")).to_contain_text("MODIFIER_50_WITH_ANATOMIC")

    page.get_by_label("Search rules").fill("")
    page.get_by_label("Family").select_option("diagnoses")
    expect(page.locator("#rule-count")).to_contain_text(re.compile(r"^\d+ of \d+ rules shown"))
    families = page.locator("#rules tbody tr td:nth-child(2)").all_inner_texts()
    assert families
    assert {"diagnoses"} == set(families)


def test_the_page_is_usable_from_the_keyboard(page: Page) -> None:
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the claim")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Claim JSON")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Judge claim")).to_be_focused()
    outline = page.get_by_role("button", name="Judge claim").evaluate(
        "b => getComputedStyle(b).outlineStyle"
    )
    assert "solid" == outline, "keyboard focus must be visible"


_COLOURS_JS = """
(selectors) => selectors.flatMap((selector) => [...document.querySelectorAll(selector)]
  .slice(0, 3).map((el) => {
    let node = el, bg = "rgba(0, 0, 0, 0)";
    while (node && (bg === "rgba(0, 0, 0, 0)" || bg === "transparent")) {
      bg = getComputedStyle(node).backgroundColor;
      node = node.parentElement;
    }
    return [selector, getComputedStyle(el).color, bg];
  }))
"""


def _luminance(css: str) -> float:
    red, green, blue = (int(v) / 255 for v in re.findall(r"\d+", css)[:3])

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def _contrast(foreground: str, background: str) -> float:
    high, low = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_text_has_enough_contrast_and_every_control_a_label(page: Page) -> None:
    """WCAG AA: 4.5:1 for text, in every state a verdict can leave the page in."""
    seen = []
    for sample, verdict in (("CLM-SAMPLE-012", "flagged"), ("CLM-SAMPLE-001", "accepted")):
        page.get_by_label("Start from a sample claim").select_option(sample)
        page.get_by_role("button", name="Load sample").click()
        page.get_by_role("button", name="Judge claim").click()
        expect(page.get_by_role("status")).to_have_attribute("data-verdict", verdict)
        seen += page.evaluate(
            _COLOURS_JS,
            ["body", "h1 .sub", ".hint", "#status", "th", "td", "a", "button", "label",
             ".sev.error", ".sev.warning", "footer p", "code"],
        )
    assert {"#status", ".sev.error", ".sev.warning", "button", "td"} <= {s for s, _, _ in seen}
    low = [(s, fg, bg, round(_contrast(fg, bg), 2)) for s, fg, bg in seen
           if _contrast(fg, bg) < 4.5]
    assert not low, low

    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea, button")]
          .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
                          && !el.textContent.trim())
          .map((el) => el.outerHTML)"""
    )
    assert [] == unlabelled


def test_an_837p_file_is_opened_and_each_of_its_claims_judged(page: Page) -> None:
    text = broken(four_claims())
    page.get_by_label("or open a JSON file or an 837P file").set_input_files(
        files=[{"name": "claims.837", "mimeType": "text/plain", "buffer": text.encode()}]
    )
    status = page.get_by_role("status")
    expect(status).to_have_text("Opened claims.837, an 837P file; judge its claims when ready.")
    page.get_by_label("Claim JSON").press("Control+Enter")

    expect(status).to_have_text(
        "837P: 3 claims judged (2 accepted, 1 flagged); 1 claim rejected by the intake; "
        "2 intake errors."
    )
    clm = {s[4:6]: n for n, s in enumerate(text.splitlines(), 1) if s.startswith("CLM*")}
    verdicts = page.locator("#findings caption, #findings p.claim-verdict").all_inner_texts()
    assert [
        f"Claim X1 (segment {clm['X1']}): Accepted: X1 has no error findings.",
        f"Claim X3 (segment {clm['X3']}): Accepted: X3 has no error findings.",
        f"Claim X4 (segment {clm['X4']}): Flagged: X4 has 1 error finding.",
        "Intake errors (2)",
    ] == verdicts
    expect(page.locator("table.claim-findings tbody")).to_contain_text("POS_NOT_ALLOWED")
    errors = page.locator("#intake-errors tbody tr")
    expect(errors).to_have_count(2)
    expect(errors.nth(0)).to_contain_text("SV104: invalid character in data element")
    expect(errors.nth(1)).to_contain_text("claim-rejected")
    expect(errors.nth(1)).to_contain_text("X2")
    expect(page.locator("#lines-table")).to_have_count(0)
    _screenshot(page, "what-if-837p.png")
