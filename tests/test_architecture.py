"""The folder tree is the design: who may import what, how big files grow, nothing points outside the repo."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "aigc"
MAX_LINES = 400


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module a file imports (at any depth in the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_streamlit_is_imported_only_by_the_app():
    outside = [str(p.relative_to(REPO)) for p in python_files(PACKAGE)
               if any(m.split(".")[0] == "streamlit" for m in imported_modules(p))
               and PACKAGE / "app" not in p.parents and p.parent != PACKAGE / "bench"]
    assert not outside, f"streamlit imported outside aigc/app: {outside}"


@pytest.mark.parametrize("path", [*python_files(PACKAGE / "runs"), PACKAGE / "engine" / "spec.py",
                                  PACKAGE / "engine" / "run_plan.py", PACKAGE / "settings.py"],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_run_protocol_and_the_spec_import_no_tensorflow(path):
    heavy = {m for m in imported_modules(path) if m.split(".")[0] in ("tensorflow", "keras", "streamlit")}
    assert not heavy, f"{path.name} imports {heavy}"


def test_no_python_file_is_over_the_size_budget():
    big = {str(p.relative_to(REPO)): n for p in python_files(PACKAGE) + python_files(REPO / "tests") + [REPO / "app.py"]
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"files over {MAX_LINES} lines: {big}"


def test_no_project_file_points_outside_the_repository():
    texts = [p for p in REPO.rglob("*") if p.is_file() and p.suffix in (".py", ".md", ".toml", ".txt", ".sh", ".yaml")
             and ".git" not in p.parts and "runs" not in p.relative_to(REPO).parts[:1]]
    needles = ("../" + "shared", "DESIGN" + ".md")  # spelled apart so that this file does not match itself
    pointing = [str(p.relative_to(REPO)) for p in texts if any(n in p.read_text(errors="replace") for n in needles)]
    assert not pointing, f"files that point outside the repository: {pointing}"
