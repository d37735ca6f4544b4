"""The README's rule catalogue and settings table are generated and cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.docs import SECTIONS, render_rules_markdown, render_section, update_readme
from service.engine import RULE_IDS
from service.settings import Settings
from service.tables import default_table

README = Path(__file__).parents[2] / "README.md"


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_readme_section_matches_the_code(name: str) -> None:
    """Regenerate with `claims-validator docs --write README.md`."""
    assert render_section(name, default_table()) in README.read_text()


def test_every_rule_id_has_a_row_with_severity_and_source() -> None:
    text = render_rules_markdown(default_table())
    for rule_id in RULE_IDS:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{rule_id}` |"))
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[2] in {"error", "warning"}
        assert all(cells), f"{rule_id} has an empty cell"


def test_every_setting_is_documented_by_its_environment_variable() -> None:
    text = render_section("settings", default_table())
    for group, field in Settings.model_fields.items():
        nested = getattr(field.annotation, "model_fields", None)
        names = [f"CLAIMS_{group.upper()}__{n.upper()}" for n in nested] if nested else [
            f"CLAIMS_{group.upper()}"
        ]
        for env in names:
            assert f"| `{env}` |" in text


def test_update_readme_rewrites_only_the_generated_sections(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    stale = README.read_text().replace("| `NPI_INVALID` |", "| `NPI_STALE` |")
    stale = stale.replace("| `CLAIMS_LOG__LEVEL` |", "| `CLAIMS_LOG_LEVEL` |")
    readme.write_text(stale)
    assert update_readme(readme, default_table())
    assert README.read_text() == readme.read_text()
    assert not update_readme(readme, default_table())
    (tmp_path / "plain.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="no generated rules section"):
        update_readme(tmp_path / "plain.md", default_table())
