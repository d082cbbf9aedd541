"""The shape of the house: imports go one way between nada_utils' subpackages, and no module imports
itself round a loop. Read from the source (ast), lazy imports inside functions included, so a change
that breaks the layering fails here rather than in a reader's head.

Each subpackage's `__init__.py` docstring has a line `May import: a, b, ...` naming the groups below
it; "helpers" are the top-level modules (errors, fileio, images, devices), which may import only one
another. `anything in nada_utils but X` is the top layer's form.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nada_utils"
HELPERS = {"errors", "fileio", "images", "devices"}
SURFACE = {"__init__", "__main__"}  # the public surface imports from below; nothing inside imports it


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    files = list(PACKAGE.rglob("*.py")) + list((ROOT / "drive_sync").glob("*.py"))
    return {module_name(p): p for p in files}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that `path` imports anywhere in its body (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def group_of(module: str) -> str:
    """helpers, surface, a subpackage name, or drive_sync."""
    parts = module.split(".")
    if parts[0] == "drive_sync":
        return "drive_sync"
    if len(parts) == 1:
        return "surface"
    if parts[1] in HELPERS:
        return "helpers"
    if parts[1] in SURFACE:
        return "surface"
    return parts[1]


def allowed_groups() -> dict[str, set[str]]:
    """Each subpackage's `May import:` line, read from its docstring."""
    subpackages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    rules = {}
    for sub in subpackages:
        doc = ast.get_docstring(ast.parse((PACKAGE / sub / "__init__.py").read_text())) or ""
        match = re.search(r"^May import: (.+)$", doc, re.M)
        assert match, f"nada_utils/{sub}/__init__.py: its docstring needs a line 'May import: ...'"
        text = match.group(1).strip()
        but = re.fullmatch(r"anything in nada_utils but (\w+)", text)
        if but:
            rules[sub] = {"helpers", "drive_sync", *subpackages} - {but.group(1)}
        else:
            rules[sub] = {g.strip() for g in text.split(",")}
            unknown = rules[sub] - {"helpers", "drive_sync", *subpackages}
            assert not unknown, f"nada_utils/{sub}: 'May import' names unknown groups {sorted(unknown)}"
    rules["helpers"] = {"helpers"}
    # drive_sync is a sibling package that mirrors run dirs: it reads their layout, never trains.
    rules["drive_sync"] = {"helpers", "weights", "adapt", "drive_sync"}
    return rules


def test_every_subpackage_says_what_it_is_for_and_may_import():
    rules = allowed_groups()
    assert {"weights", "models", "adapt", "measure", "invert"} <= set(rules)
    top_level = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(top_level) <= 12, f"the top level of nada_utils/ is a room again: {top_level}"
    assert set(top_level) == HELPERS | SURFACE, f"top-level modules other than the helpers: {top_level}"


def test_no_import_goes_up_a_layer():
    modules, rules = all_modules(), allowed_groups()
    wrong = []
    for name, path in sorted(modules.items()):
        group = group_of(name)
        if group == "surface":
            continue
        for target in sorted(imports_of(path, modules)):
            target_group = group_of(target)
            if target_group == "surface":
                wrong.append(f"{name} imports the public surface {target}; import the module that defines it")
            elif target_group != group and target_group not in rules[group]:
                wrong.append(f"{name} ({group}) imports {target} ({target_group})")
    assert not wrong, "imports across the layers of nada_utils/*/__init__.py:\n" + "\n".join(wrong)



def test_only_the_mini_world_metrics_read_the_judge():
    """The judge scores adaptation; nothing that trains (losses, layer selection, the checkpoint rule)
    may see it, or training could learn what the judge likes (docs/MINI_WORLD.md)."""
    modules = all_modules()
    readers = {name for name, path in modules.items() if "nada_utils.mini_world.judge" in imports_of(path, modules)}
    # The recipe trains and checks the judge; it is a command, and nothing in the library imports it.
    recipe = {"nada_utils.mini_world.recipe.train_judge", "nada_utils.mini_world.recipe.check_models"}
    assert readers <= {"nada_utils.mini_world.metrics"} | recipe, readers
    users = {name for name, path in modules.items() if not name.startswith("nada_utils.mini_world.recipe")
             and any(t.startswith("nada_utils.mini_world.recipe") for t in imports_of(path, modules))}
    assert not users, users


def outside_imports(path: Path) -> set[str]:
    """The top-level names of what `path` imports from outside the project (torch, clip, ...)."""
    tree = ast.parse(path.read_text())
    outside = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    outside |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    return outside - {"nada_utils", "__future__"}


def test_the_config_imports_nothing_it_configures():
    """config.py is settings: it loads no torch, model or loss, so reading a run's settings is cheap."""
    modules = all_modules()
    imported = imports_of(modules["nada_utils.adapt.config"], modules)
    # The mini world's captions spell the presets' texts (docs/MINI_WORLD.md); they import nothing.
    assert imported <= {"nada_utils.adapt.layer_specs", "nada_utils.adapt.prompt_templates", "nada_utils.errors",
                        "nada_utils.mini_world.captions"}, imported
    outside = outside_imports(modules["nada_utils.adapt.config"])
    assert "torch" not in outside and "clip" not in outside
    assert not imports_of(modules["nada_utils.mini_world.captions"], modules)
    assert not outside_imports(modules["nada_utils.mini_world.captions"])


def test_the_method_reads_in_short_functions():
    """No function of adapt/ runs over 60 lines: the training loop is a run object whose methods read top to bottom."""
    long = []
    for path in sorted((PACKAGE / "adapt").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long.append(f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long


def test_no_import_cycle():
    modules = all_modules()
    graph = {name: imports_of(path, modules) for name, path in modules.items()}
    # A package's __init__ that re-exports its modules (notebook, cli) is not a cycle with them.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import loops: {cycles}"


def test_the_checker_sees_a_loop_and_an_upward_import(tmp_path, monkeypatch):
    """The checks above must be able to fail: a planted upward import and a planted loop are found."""
    fake = tmp_path / "nada_utils"
    for sub, doc in [("weights", "May import: helpers"), ("models", "May import: helpers, weights")]:
        (fake / sub).mkdir(parents=True)
        (fake / sub / "__init__.py").write_text(f'"""{sub}.\n\n{doc}\n"""\n')
    (fake / "__init__.py").write_text("")
    (fake / "errors.py").write_text("")
    (fake / "weights" / "registry.py").write_text("def f():\n    from nada_utils.models import stylegan2\n")
    (fake / "models" / "stylegan2.py").write_text("from nada_utils.weights.registry import f\n")
    (tmp_path / "drive_sync").mkdir()
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    for check, expected in [(test_no_import_goes_up_a_layer, "weights.registry (weights) imports"),
                            (test_no_import_cycle, "import loops")]:
        try:
            check()
        except AssertionError as e:
            assert expected in str(e)
        else:
            raise AssertionError(f"{check.__name__} missed a planted fault")
