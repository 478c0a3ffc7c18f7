"""The import direction of docs/architecture.md: the core never imports a door, and doors reach each other only
through the few seams the page names. Read from the source (AST), so a lazy import inside a function counts too."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CORE = {
    "utils",
    "vendi",
    "projection",
    "gradients",
    "cluster",
    "proxy",
    "exact",
    "io",
    "sharded",
    "data",
    "bootstrap",
    "selection",
    "per_example",
    "comparison",
    "config",
    "errors",
    "accumulators",
    "distributed",
    "measures",
    "testing",
}
LIBRARY = {"featurizer"}  # the one object every door featurizes through
# door → the other doors it may import (everything may import the core, the library and the public `gvendi`)
SEAMS = {
    "cli": {"synthesis", "hub", "report", "evidence"},  # the command registry; curation commands render the report
    "hub": {"measurement", "synthesis", "cli"},  # the Space hosts the measurement; a push reads the run folder and
    # schema through the synthesis package; hub/cli.py re-exports `push`
    "synthesis": {"cli"},  # synthesis/cli.py keeps `python -m gvendi.synthesis.cli` working
    "measurement": set(),
    "report": set(),
    "evidence": set(),
    "callbacks": set(),
    "_evaluate_hook": set(),
    "__main__": {"cli"},  # python -m gvendi
}


def _unit(module: str) -> str:
    """``gvendi.synthesis.loop`` → ``synthesis``; ``callbacks.gvendi_callback`` → ``callbacks``; ``gvendi`` → ``""``"""
    parts = module.split(".")
    if parts[0] == "callbacks":
        return "callbacks"
    return parts[1] if len(parts) > 1 and parts[1] != "__init__" else ""  # gvendi/__init__.py: the public API


def _imports(path: Path) -> set[str]:
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
                found |= {f"{name}.{a.name}" for a in node.names} if not node.module else {name}
            elif node.module and node.module.split(".")[0] in ("gvendi", "callbacks"):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] in ("gvendi", "callbacks")}
    return found


def _sources():
    for path in sorted([*ROOT.glob("gvendi/**/*.py"), *ROOT.glob("callbacks/*.py")]):
        if "data" not in path.relative_to(ROOT).parts:
            yield path


def test_core_and_library_never_import_a_door():
    wrong = []
    for path in _sources():
        unit = _unit(".".join(path.relative_to(ROOT).with_suffix("").parts))
        if unit not in CORE | LIBRARY:
            continue
        allowed = CORE | ({""} if unit in LIBRARY else set()) | (LIBRARY if unit in LIBRARY else set())
        for target in _imports(path):
            target_unit = _unit(target)
            if target_unit not in allowed and target != "gvendi.__version__" and target_unit != unit:
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not wrong, "the core must not import a door:\n" + "\n".join(wrong)


def test_doors_meet_only_at_the_named_seams():
    wrong = []
    for path in _sources():
        unit = _unit(".".join(path.relative_to(ROOT).with_suffix("").parts))
        if unit in CORE | LIBRARY or unit == "":
            continue
        assert unit in SEAMS, (
            f"{path.relative_to(ROOT)}: a new unit {unit!r}; place it in docs/architecture.md and here"
        )
        for target in _imports(path):
            target_unit = _unit(target)
            if target_unit in CORE | LIBRARY | {"", "__version__", unit} | SEAMS[unit]:
                continue
            wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not wrong, "doors import each other outside the seams of docs/architecture.md:\n" + "\n".join(wrong)
