"""The folder tree is the design: who may import what, no import circles, pages named by their URL, sizes, no outside paths."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "aigc"
APP = PACKAGE / "app"
MAX_LINES = 400
HEAVY = ("tensorflow", "keras", "streamlit")


def python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(node: ast.ImportFrom, path: Path) -> str:
    """The absolute module an ImportFrom names (relative imports resolved against the file's package)."""
    if not node.level:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, *, top_level_only: bool = False) -> set[str]:
    """Every module a file imports (`from a import b` counts as both a and a.b); optionally only module-level ones."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = ast.walk(tree) if not top_level_only else (n for stmt in tree.body if not isinstance(
        stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in ast.walk(stmt))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node, path)
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


PROJECT = {module_name(p): p for p in python_files(PACKAGE)}


def project_graph(*, top_level_only: bool = False) -> dict[str, set[str]]:
    """module -> the project modules it imports (a package import counts as importing its __init__)."""
    return {name: {m for m in imports_of(path, top_level_only=top_level_only) if m in PROJECT and m != name}
            for name, path in PROJECT.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules, or None (depth-first search with colours)."""
    colour, stack = {}, []

    def visit(node: str) -> list[str] | None:
        colour[node] = "grey"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == "grey":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in colour and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        colour[node] = "black"
        return None

    for node in sorted(graph):
        if node not in colour and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_circle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("top_level_only", [False, True], ids=["any-import", "module-level"])
def test_there_is_no_import_circle_in_the_package(top_level_only):
    cycle = find_cycle(project_graph(top_level_only=top_level_only))
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def _imports_streamlit(path: Path) -> bool:
    return any(m.split(".")[0] == "streamlit" for m in imports_of(path))


def test_every_module_of_the_app_imports_streamlit_and_no_other_does():
    app_modules = [p for p in python_files(APP) if p.name != "__init__.py"]
    assert app_modules, "aigc/app/ has modules"
    without = [str(p.relative_to(REPO)) for p in app_modules if not _imports_streamlit(p)]
    assert not without, f"modules under aigc/app/ that do not use Streamlit belong in aigc/serve/: {without}"
    outside = [str(p.relative_to(REPO)) for p in python_files(PACKAGE) if APP not in p.parents and _imports_streamlit(p)]
    assert not outside, f"streamlit imported outside aigc/app/: {outside}"


def test_each_page_module_is_named_by_its_url_and_pages_import_no_page_nor_the_frame():
    from aigc.app.routes import PAGE_KEYS

    pages = {p.stem for p in python_files(APP / "pages") if p.name != "__init__.py"}
    assert pages == set(PAGE_KEYS), f"page modules {sorted(pages)} vs URL paths {sorted(PAGE_KEYS)}"
    for path in python_files(APP / "pages"):
        forbidden = {m for m in imports_of(path) if m.startswith("aigc.app.pages.") or m == "aigc.app.frame"}
        assert not forbidden, f"{path.name} imports {forbidden}"


def test_routes_is_a_leaf_of_the_app():
    inside = {m for m in imports_of(APP / "routes.py") if m.startswith("aigc.app")}
    assert not inside, f"routes.py imports {inside}"


def test_nothing_below_the_command_line_imports_it():
    users = [str(p.relative_to(REPO)) for p in python_files(PACKAGE) if PACKAGE / "cli" not in p.parents
             and p.name != "__main__.py" and any(m == "aigc.cli" or m.startswith("aigc.cli.") for m in imports_of(p))]
    assert not users, f"modules outside aigc/cli/ that import it: {users}"


def test_the_benchmarks_are_outside_the_shipped_package():
    assert not (PACKAGE / "bench").exists()
    assert (REPO / "bench" / "main.py").is_file()
    assert find_cycle({module_name(p): {m for m in imports_of(p) if m.startswith("bench.") and m != module_name(p)}
                       for p in python_files(REPO / "bench")}) is None, "import circle in bench/"


@pytest.mark.parametrize("path", [*python_files(PACKAGE / "runs"), *python_files(PACKAGE / "serve"),
                                  PACKAGE / "engine" / "spec.py", PACKAGE / "engine" / "run_plan.py",
                                  PACKAGE / "settings.py"], ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_run_protocol_the_spec_and_the_server_side_import_no_tensorflow_at_module_level(path):
    heavy = {m for m in imports_of(path, top_level_only=True) if m.split(".")[0] in HEAVY}
    assert not heavy, f"{path.name} imports {heavy}"


def test_no_python_file_is_over_the_size_budget():
    big = {str(p.relative_to(REPO)): n for p in python_files(PACKAGE) + python_files(REPO / "tests")
           + python_files(REPO / "bench") + [REPO / "app.py"] if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"files over {MAX_LINES} lines: {big}"


def test_no_project_file_points_outside_the_repository():
    texts = [p for p in REPO.rglob("*") if p.is_file() and p.suffix in (".py", ".md", ".toml", ".txt", ".sh", ".yaml")
             and ".git" not in p.parts and "runs" not in p.relative_to(REPO).parts[:1]]
    needles = ("../" + "shared", "DESIGN" + ".md")  # spelled apart so that this file does not match itself
    pointing = [str(p.relative_to(REPO)) for p in texts if any(n in p.read_text(errors="replace") for n in needles)]
    assert not pointing, f"files that point outside the repository: {pointing}"
