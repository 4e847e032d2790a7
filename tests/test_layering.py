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


def library_imports() -> dict[str, set[str]]:
    """Each library module and the library modules it imports (at any depth of its code)."""
    graph: dict[str, set[str]] = {}
    for path in LIBRARY.rglob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ocrsr_lib"):
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.startswith("ocrsr_lib")}
        graph[module_name(path)] = imported
    return graph


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
    assert cycles(library_imports()) == []


def test_a_cycle_is_found_when_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_quantization_algorithms_import_only_models_and_file_io():
    allowed = ("ocrsr_lib.quant", "ocrsr_lib.models", "ocrsr_lib.checkpoints")
    for module, imported in library_imports().items():
        if module.startswith("ocrsr_lib.quant"):
            assert all(name.startswith(allowed) for name in imported), (module, imported)


def test_checkpoint_files_and_models_do_not_import_runs_caches_or_results():
    upper = ("ocrsr_lib.runs", "ocrsr_lib.cache", "ocrsr_lib.pipelines", "ocrsr_lib.results")
    for module, imported in library_imports().items():
        if module.startswith(("ocrsr_lib.models", "ocrsr_lib.checkpoints", "ocrsr_lib.quant")):
            assert not any(name.startswith(upper) for name in imported), (module, imported)


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
