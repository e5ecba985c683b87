"""The shipped model's report table, written into every page that quotes it (the README,
the model card, docs/results.md) from one file of measured figures,
`src/lgdk/weights/evaluation.json`, and the shipped settings (`lgdk.shipped`).

    python scripts/model_card.py          # rewrite the tables
    python scripts/model_card.py --check  # exit 1 when a page differs (as the tests do)

The figures file names the model and the settings it was measured with; when either is no
longer what ships, this script refuses: measure again (the file's command) first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lgdk.config import InferenceConfig
from lgdk.shipped import MODEL_NAME, SHIPPED_SETTINGS

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "src/lgdk/weights/evaluation.json"
PAGES = [ROOT / "README.md", ROOT / "src/lgdk/weights/README.md", ROOT / "docs/results.md"]
BEGIN, END = "<!-- report-table: begin (scripts/model_card.py) -->", "<!-- report-table: end -->"


class Stale(Exception):
    pass


def load_figures(path: Path = FIGURES) -> dict:
    figures = json.loads(path.read_text())
    if figures["model"] != MODEL_NAME or figures["settings"] != SHIPPED_SETTINGS:
        raise Stale(f"{path.name} holds figures of {figures['model']} at {figures['settings']}"
                    f", but {MODEL_NAME} ships with {SHIPPED_SETTINGS}: measure again with "
                    f"`{figures['command']}` and write the figures there")
    return figures


def render(figures: dict) -> str:
    """The table and the lines that say how it was measured."""
    columns = figures["columns"]
    head = ["what", "data (report part)", "measure"] + [
        f"{c['precision']}, size {c['size']}" for c in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in figures["rows"]:
        values = ["–" if v is None else f"{v:.3f}" for v in row["values"]]
        lines.append(f"| {row['what']} | {row['data']} | {row['measure']} | "
                     + " | ".join(values) + " |")
    settings = ", ".join(f"`{k}: {v}`" for k, v in figures["settings"].items())
    where = "; ".join(f"{c['precision']} on {c['where']}" for c in columns)
    cells, most = figures["settings"]["object_cells"], InferenceConfig().max_size
    return "\n".join([
        f"{figures['model']} at its shipped settings ({settings}), on the report part of the "
        "development data, which chose nothing. `precision: auto` picks the arithmetic by "
        f"the CPU: {where}. A pass's size rises from the column's until its smallest "
        f"object spans {cells} stride-16 cells, up to {most}. Command, one column at a "
        f"time: `{figures['command']}`.", "", *lines])


def with_table(text: str, table: str, page: Path) -> str:
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise Stale(f"{page} needs one '{BEGIN}' line and one '{END}' line around its table")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when a page's table differs")
    args = parser.parse_args()
    try:
        table = render(load_figures())
        stale = []
        for page in PAGES:
            text = page.read_text()
            new = with_table(text, table, page)
            if new != text:
                stale.append(page)
                if not args.check:
                    page.write_text(new)
    except Stale as exc:
        print(f"model_card: {exc}", file=sys.stderr)
        return 1
    for page in stale:
        print(f"{'differs' if args.check else 'wrote'}: {page.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
