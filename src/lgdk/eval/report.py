"""Printing and saving evaluation results (table, JSON, CSV), atomically."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

GLOBAL_KEYS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


def table(results: dict) -> str:
    lines = [f"{'sequence':<24}{'J&F':>8}{'J':>8}{'F':>8}"]
    for seq, info in results["sequences"].items():
        lines.append(f"{seq:<24}{info['J&F-Mean']:>8.4f}{info['J-Mean']:>8.4f}"
                     f"{info['F-Mean']:>8.4f}")
    lines.append("")
    lines.append("  ".join(f"{k} {results[k]:.4f}" for k in GLOBAL_KEYS))
    return "\n".join(lines)


def atomic_write(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, results: dict) -> None:
    atomic_write(path, json.dumps(results, indent=2, sort_keys=False))


def write_csv(path: str | os.PathLike, results: dict) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["sequence", "object", "J-Mean", "F-Mean", "J&F-Mean"])
    for seq, info in results["sequences"].items():
        for obj, s in info["objects"].items():
            writer.writerow([seq, obj, f"{s['J-Mean']:.6f}", f"{s['F-Mean']:.6f}",
                             f"{(s['J-Mean'] + s['F-Mean']) / 2:.6f}"])
    writer.writerow(["GLOBAL", "", f"{results['J-Mean']:.6f}", f"{results['F-Mean']:.6f}",
                     f"{results['J&F-Mean']:.6f}"])
    atomic_write(path, buf.getvalue())
