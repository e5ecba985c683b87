"""The package's folders depend on each other without a cycle, and nothing that runs a
model for users (infer/, prompts/, video/, app/) imports the training code. Read from
the source's import statements (those inside functions too)."""

import ast
from pathlib import Path

import lgdk

PACKAGE = Path(lgdk.__file__).parent
USER_SIDE = ("infer", "prompts", "video", "app")


def folder_of(module: str) -> str | None:
    """lgdk.video.job -> 'video'; top-level modules (lgdk.config) count as their name."""
    parts = module.split(".")
    return parts[1] if parts[0] == "lgdk" and len(parts) > 1 else None


def imports() -> dict[str, set[str]]:
    """folder -> the folders its modules import."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).with_suffix("")
        here = relative.parts[0] if len(relative.parts) > 1 else relative.name
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                there = folder_of(name)
                if there and there != here:
                    graph.setdefault(here, set()).add(there)
    return graph


def test_the_folders_import_each_other_without_a_cycle():
    graph = imports()
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(
                    trail[trail.index(nxt):] + [node, nxt] if nxt in trail else [node, nxt]))
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_what_runs_for_users_never_imports_the_training_code():
    graph = imports()
    for folder in USER_SIDE:
        assert "train" not in graph.get(folder, set()), folder
