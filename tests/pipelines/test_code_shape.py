"""The shape docs/architecture.md promises, checked on the code itself."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAGES_DIR = ROOT / "pipelines" / "stages"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _string_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def test_stage_modules_are_short_and_import_no_other_stage():
    modules = [p for p in STAGES_DIR.glob("*.py") if p.name != "__init__.py"]
    assert len(modules) >= 8
    for path in modules:
        lines = len(path.read_text().splitlines())
        assert lines <= 250, f"{path.name}: {lines} lines"
        others = {m for m in _imports(path) if m.startswith("pipelines.stages")}
        assert not others, f"{path.name} imports {sorted(others)}"


def test_only_the_store_spells_the_store_layout():
    offenders = []
    for folder in ("pipelines", "flows", "trainer"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "store.py" and path.parent.name == "pipelines":
                continue
            found = {"rejects", "part", "_all"} & set(_string_literals(path))
            if found:
                offenders.append(f"{path.relative_to(ROOT)}: {sorted(found)}")
    assert not offenders


def test_the_data_side_never_imports_the_trainer_or_the_flows():
    for path in (ROOT / "pipelines").rglob("*.py"):
        wrong = {m for m in _imports(path) if m.split(".")[0] in ("trainer", "flows")}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"
    for folder in ("filters", "dedup"):
        for path in (ROOT / folder).rglob("*.py"):
            heavy = {
                m
                for m in _imports(path)
                if m.split(".")[0] in ("apache_beam", "prefect", "pipelines")
            }
            assert not heavy, f"{path.relative_to(ROOT)} imports {sorted(heavy)}"


def test_the_registry_alone_says_how_a_stage_runs_and_what_it_reads():
    from pipelines.registry import STAGES, spec
    from pipelines.stages import STAGE_CLASSES

    assert list(STAGE_CLASSES) == list(STAGES)
    for name, cls in STAGE_CLASSES.items():
        restated = {"per_source", "upstream"} & set(vars(cls))
        assert not restated, f"{cls.__name__} sets {sorted(restated)}"
        assert cls().per_source == spec(name).per_source
