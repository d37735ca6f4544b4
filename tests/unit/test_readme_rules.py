"""The README's rule catalogue is generated from the rule table and cannot drift from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.engine import RULE_IDS
from service.ruletable.docs import render_rules_markdown, update_readme
from service.ruletable.load import default_table

README = Path(__file__).parents[2] / "README.md"


def test_readme_rule_table_matches_the_rule_table() -> None:
    """Regenerate with `claims-validator rules docs --write README.md`."""
    assert render_rules_markdown(default_table()) in README.read_text()


def test_every_rule_id_has_a_row_with_severity_and_source() -> None:
    text = render_rules_markdown(default_table())
    for rule_id in RULE_IDS:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{rule_id}` |"))
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[2] in {"error", "warning"}
        assert all(cells), f"{rule_id} has an empty cell"


def test_update_readme_rewrites_only_the_generated_section(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README.read_text().replace("| `NPI_INVALID` |", "| `NPI_STALE` |"))
    assert update_readme(readme, default_table())
    assert README.read_text() == readme.read_text()
    assert not update_readme(readme, default_table())
    (tmp_path / "plain.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="no generated rules section"):
        update_readme(tmp_path / "plain.md", default_table())
