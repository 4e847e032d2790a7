"""The library's import layering: no cycles, quantization algorithms at the bottom, and chapters
that import only the book's facade."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import ocrsr_lib
import ocrsr_lib.book

LIBRARY = Path(ocrsr_lib.__file__).parent
BOOK = LIBRARY.parent / "book"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(LIBRARY.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(node: ast.AST, module: str) -> set[str]:
    """Library modules an import statement loads, with every package whose __init__ it runs."""
    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ocrsr_lib"):
        names = {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    elif isinstance(node, ast.Import):
        names = {alias.name for alias in node.names if alias.name.startswith("ocrsr_lib")}
    else:
        return set()
    loaded = set()
    for name in names:
        parts = name.split(".")
        loaded |= {".".join(parts[:end]) for end in range(2, len(parts) + 1)}
    return loaded - {module}


def library_imports() -> dict[str, set[str]]:
    """Each library module and the library modules that importing it loads directly, packages
    included (`ocrsr_lib.data.textzoom` runs `ocrsr_lib.data`'s __init__ first)."""
    graph: dict[str, set[str]] = {}
    for path in LIBRARY.rglob("*.py"):
        module = module_name(path)
        graph[module] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            graph[module] |= imported_modules(node, module)
    modules = set(graph)
    return {module: imported & modules for module, imported in graph.items()}


def loaded_by(graph: dict[str, set[str]], module: str) -> set[str]:
    """Every library module that importing `module` loads, transitively."""
    seen, todo = set(), [module]
    while todo:
        for imported in graph.get(todo.pop(), ()):
            if imported not in seen:
                seen.add(imported)
                todo.append(imported)
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(module: str, stack: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                found.append(stack[stack.index(imported) :] + [imported])
            elif imported not in state:
                visit(imported, [*stack, imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_the_library_has_no_import_cycle():
    graph = library_imports()
    # a package's __init__ importing its own submodules is how packages work, not a cycle
    submodules = {
        module: {name for name in imported if not module.startswith(name + ".")}
        for module, imported in graph.items()
    }
    assert cycles(submodules) == []


def test_a_cycle_is_found_when_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_quantization_algorithms_load_only_models_and_file_io():
    allowed = ("ocrsr_lib.quant", "ocrsr_lib.models", "ocrsr_lib.checkpoints", "ocrsr_lib.labels")
    graph = library_imports()
    for module in graph:
        if module.startswith("ocrsr_lib.quant"):
            loaded = loaded_by(graph, module) - {"ocrsr_lib"}
            assert all(name.startswith(allowed) for name in loaded), (module, sorted(loaded))


def test_models_and_file_io_load_no_runs_caches_data_or_results():
    upper = ("ocrsr_lib.runs", "ocrsr_lib.cache", "ocrsr_lib.config", "ocrsr_lib.data")
    upper += ("ocrsr_lib.pipelines", "ocrsr_lib.results", "ocrsr_lib.quant")
    graph = library_imports()
    for module in graph:
        if module.startswith(("ocrsr_lib.models", "ocrsr_lib.checkpoints")):
            loaded = loaded_by(graph, module)
            assert not any(name.startswith(upper) for name in loaded), (module, sorted(loaded))


def test_chapters_import_the_library_only_through_the_book_facade_and_never_read_tests():
    chapters = sorted(BOOK.glob("*.ipynb"))
    assert len(chapters) >= 7
    for chapter in chapters:
        cells = json.loads(chapter.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ocrsr_lib"):
                assert node.module == "ocrsr_lib.book", (chapter.name, node.module)
                assert all(a.name in ocrsr_lib.book.__all__ for a in node.names), chapter.name
        assert "tests/" not in code, chapter.name
