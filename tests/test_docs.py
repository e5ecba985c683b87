"""The docs that are written from the code stay what the code writes: the command-line
reference (docs/cli.md) and the report table of the README, the model card and
docs/results.md (scripts/model_card.py); the front page stays a front page."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from lgdk.app.limits import AppSettings
from lgdk.cli.common import setting_fields
from lgdk.cli.reference import reference
from lgdk.shipped import SHIPPED_SETTINGS
from scripts import model_card

ROOT = Path(__file__).resolve().parents[1]


def test_the_cli_reference_is_what_the_parser_writes():
    written = (ROOT / "docs/cli.md").read_text()
    assert written == reference(), "run: python -m lgdk.cli.reference > docs/cli.md"
    for f in setting_fields():
        assert f.metadata["help"].split()[0] in written
    for f in dataclasses.fields(AppSettings):
        if f.metadata["flag"]:
            assert f"`--{f.name.replace('_', '-')} " in written, f.name


def test_every_page_quotes_the_one_report_table():
    table = model_card.render(model_card.load_figures())
    assert "0.853" in table and "float32, size 384" in table
    for page in model_card.PAGES:
        text = page.read_text()
        assert model_card.with_table(text, table, page) == text, (
            f"{page.name} differs: run python scripts/model_card.py")


def test_figures_of_other_settings_are_refused(tmp_path):
    figures = json.loads(model_card.FIGURES.read_text())
    figures["settings"] = {**SHIPPED_SETTINGS, "window": 0.25}
    stale = tmp_path / "evaluation.json"
    stale.write_text(json.dumps(figures))
    with pytest.raises(model_card.Stale, match="measure again"):
        model_card.load_figures(stale)
    with pytest.raises(model_card.Stale, match="needs one"):
        model_card.with_table("no markers here", "| table |", Path("page.md"))


def test_the_front_page_is_short_and_performance_is_not_a_diary():
    readme = (ROOT / "README.md").read_text().splitlines()
    assert len(readme) < 160
    assert any("make demo" in line for line in readme[:30])
    assert any("make test" in line for line in readme[:30])
    performance = (ROOT / "docs/performance.md").read_text()
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", performance)
