#!/usr/bin/env python3
"""Print minidocker's import graph, layer by layer, and every import that goes up.

    python3 scripts/import-graph.py            the graph: each module and what it imports
    python3 scripts/import-graph.py --check    only the upward imports and cycles; exit 1 if any
    python3 scripts/import-graph.py --repo DIR another checkout (e.g. `git worktree add
                                               /tmp/before 8ecd651`: the flat package
                                               before the folders, which declares no layers)

The layer order is declared once, in minidocker/__init__.py (LAYERS); this script
and tests/test_architecture.py read it from there.  It parses the source with `ast`
and imports nothing, so it runs on any Python 3.11 without the engine's privileges.
"""
import ast
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "minidocker")


def use_repo(path: str) -> None:
    """Read the package of another checkout instead of this one."""
    global REPO, PACKAGE
    REPO = os.path.abspath(path)
    PACKAGE = os.path.join(REPO, "minidocker")


def declared_layers() -> list[tuple[str, ...]]:
    """LAYERS from minidocker/__init__.py, read without importing the package.  A
    package that declares none is one layer (its cycles are still found)."""
    tree = ast.parse(open(os.path.join(PACKAGE, "__init__.py")).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "LAYERS":
            return [tuple(layer) for layer in ast.literal_eval(node.value)]
    return [("minidocker",)]


def modules() -> dict[str, str]:
    """Every module of the package: dotted name -> file."""
    found = {}
    for top, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(top, name)
                dotted = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                found[dotted.removesuffix(".__init__")] = path
    return found


def imports_of(path: str, mods: dict) -> set[str]:
    """The package's modules that a file imports (at the top or inside a function)."""
    here = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
    package = here.rsplit(".", 1)[0] if not here.endswith("__init__") else here.removesuffix(".__init__")
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            # `from pkg import a, b`: each name that is a module is imported; a name
            # that is not (a function, a constant) imports the module it comes from.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in mods:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def layer_of(module: str, layers) -> int:
    """The index of the most specific prefix that names the module in LAYERS."""
    best, rank = -1, None
    for i, layer in enumerate(layers):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank is None:
        raise SystemExit(f"{module} is in no layer: add it to LAYERS in minidocker/__init__.py")
    return rank


def graph():
    mods = modules()
    own = {m: imports_of(p, mods) - {m} for m, p in mods.items()}
    # A module that imports its own package's __init__ only for a name defined there
    # (e.g. `from minidocker import config`) imports that module, not the package: imports_of
    # resolved it already; what remains as "minidocker" is the package API itself.
    return mods, own


def problems(layers, own) -> list[str]:
    found = []
    for mod, deps in sorted(own.items()):
        for dep in sorted(deps):
            if layer_of(dep, layers) > layer_of(mod, layers):
                found.append(f"upward import: {mod} (layer {layer_of(mod, layers)}) imports "
                             f"{dep} (layer {layer_of(dep, layers)})")
    for cycle in cycles(own):
        found.append("import cycle among: " + ", ".join(cycle))
    return found


def cycles(own) -> list[list[str]]:
    """Each strongly connected group of modules that import each other in a circle."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in own.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))
    for v in sorted(own):
        if v not in index:
            visit(v)
    return out


def main(argv):
    if "--repo" in argv:
        use_repo(argv[argv.index("--repo") + 1])
    layers = declared_layers()
    mods, own = graph()
    if "--check" not in argv:
        for i, layer in enumerate(layers):
            print(f"layer {i}: {' '.join(layer)}")
            for mod in sorted(m for m in mods if layer_of(m, layers) == i):
                deps = sorted(own[mod])
                print(f"  {mod:34} -> {', '.join(d.removeprefix('minidocker.') for d in deps) or '-'}")
    found = problems(layers, own)
    for line in found:
        print(line)
    if "--check" in argv:
        print(f"{len(mods)} modules, {sum(map(len, own.values()))} imports, {len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
