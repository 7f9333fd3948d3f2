"""The package's shape: layers import only downward, one concern per module.

The layer order is declared once, in minidocker/__init__.py (LAYERS);
scripts/import-graph.py reads every import with `ast` and this test fails on an
upward import or a cycle.  It also holds each module to the promises of
docs/architecture.md: a header naming its layer, and a size a reader can take in.
"""
import ast
import importlib.util
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("import_graph", os.path.join(REPO, "scripts", "import-graph.py"))
import_graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(import_graph)

LAYERS = import_graph.declared_layers()
MODULES, IMPORTS = import_graph.graph()
MAX_LINES = 450          # "~400 lines at most": a module a student reads in one sitting
# Where the package's own modules may be imported inside a function: the Python API
# and the CLI import only what a call or a command needs, so `import minidocker` and
# `minidocker --version` stay fast (bench/README.md measures the CLI's start-up).
LAZY_ALLOWED = ("minidocker", "minidocker.cli")


def test_every_module_is_in_a_layer():
    for mod in MODULES:
        import_graph.layer_of(mod, LAYERS)        # raises SystemExit for a stray module


def test_imports_go_only_downward_and_never_in_a_circle():
    assert import_graph.problems(LAYERS, IMPORTS) == []


def test_the_check_can_fail():
    """The check itself: an upward import and a cycle are both reported."""
    fake = {"minidocker.kernel": {"minidocker.engine.containers"},
            "minidocker.engine.containers": {"minidocker.engine.stats"},
            "minidocker.engine.stats": {"minidocker.engine.containers"}}
    found = import_graph.problems(LAYERS, fake)
    assert any(line.startswith("upward import: minidocker.kernel") for line in found)
    assert any(line.startswith("import cycle among: minidocker.engine.containers") for line in found)


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_module_header_and_size(mod):
    path = MODULES[mod]
    text = open(path).read()
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert doc, f"{path} has no docstring: say what it is and why"
    if not path.endswith("__main__.py"):
        assert "Layer" in doc or "layer" in doc.split("\n\n")[0] or path.endswith("__init__.py"), \
            f"{path}: the header should name its layer (e.g. 'Layer: runtime (what runc does)')"
    lines = text.count("\n")
    assert lines <= MAX_LINES, f"{path} has {lines} lines: split it by concern"


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_own_modules_imported_at_the_top(mod):
    if mod in LAZY_ALLOWED or any(mod.startswith(p + ".") for p in LAZY_ALLOWED if p != "minidocker"):
        return
    tree = ast.parse(open(MODULES[mod]).read())
    top = set(id(n) for n in tree.body)
    late = [n.lineno for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in top
            and ((isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith("minidocker")))
                 or (isinstance(n, ast.Import) and any(a.name.startswith("minidocker") for a in n.names)))]
    assert not late, f"{MODULES[mod]}: the package's own modules imported inside functions at lines {late}"
