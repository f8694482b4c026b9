"""The package's imports go one way: down the layers of docs/architecture.md.

Reads every module's imports (at module level and inside functions; not
those only for type checkers) and fails on an import that goes up a layer and
on any cycle between modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "wagtail_vector_index"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

#: The layers, bottom first, as (layer, module name prefixes). A module
#: belongs to the layer of its longest matching prefix. Keep in step with
#: docs/architecture.md.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        (
            PACKAGE,  # The package's __init__: its version.
            f"{PACKAGE}.i18n",
            f"{PACKAGE}.exceptions",
            f"{PACKAGE}.redaction",
            f"{PACKAGE}.conf",
            f"{PACKAGE}.ai_utils",
            f"{PACKAGE}.ai_utils.types",
        ),
    ),
    ("parameters", (f"{PACKAGE}.parameters",)),
    # The usage ledger and budgets: the backends record through it.
    ("usage", (f"{PACKAGE}.usage",)),
    # Retries, fallbacks and the circuit breaker: the backends' calls go
    # through it.
    ("resilience", (f"{PACKAGE}.resilience",)),
    # The embedding cache: the backends' with_cache() and the indexes use it.
    ("embedding cache", (f"{PACKAGE}.embedding_cache",)),
    ("backends", (f"{PACKAGE}.ai_utils.backends",)),
    ("site overrides", (f"{PACKAGE}.site_overrides",)),
    # The AI backends page's and check_ai_backends' description of each
    # alias, and the connection check.
    ("ai", (f"{PACKAGE}.ai", f"{PACKAGE}.backend_checks")),
    (
        "settings form, page helpers",
        (
            f"{PACKAGE}.ai_settings_form",
            f"{PACKAGE}.pages",
            # The field suggestions' prompts: defaults, a site's own, rendering.
            f"{PACKAGE}.editor_prompts",
            # Image descriptions: the core the image editor's button and
            # describe_images share.
            f"{PACKAGE}.image_descriptions",
        ),
    ),
    (
        "models",
        (
            f"{PACKAGE}.models",
            f"{PACKAGE}.migrations",
            f"{PACKAGE}.contrib",
            f"{PACKAGE}.contrib.pgvector.fields",
            f"{PACKAGE}.contrib.pgvector.models",
            f"{PACKAGE}.contrib.pgvector.migrations",
        ),
    ),
    ("indexes", (f"{PACKAGE}.index",)),
    (
        "admin, commands, checks, app",
        (
            f"{PACKAGE}.views",
            # Reports › AI usage and its dashboard panel (named for the
            # reader: ``views`` covers them).
            f"{PACKAGE}.views.usage_report",
            f"{PACKAGE}.views.usage_panel",
            # The editor panels (beside the views whose endpoints they use).
            f"{PACKAGE}.panels",
            f"{PACKAGE}.related_panels",
            f"{PACKAGE}.wagtail_hooks",
            # Editor features (AIFieldPanel), beside the views they post to.
            f"{PACKAGE}.panels",
            f"{PACKAGE}.management",
            f"{PACKAGE}.checks",
            f"{PACKAGE}.apps",
            f"{PACKAGE}.contrib.pgvector.apps",
            f"{PACKAGE}.contrib.pgvector.checks",
            # 0.10.0's INSTALLED_APPS entry, kept for upgrades.
            f"{PACKAGE}.storage",
        ),
    ),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {
    module_name(path): path
    for path in sorted(ROOT.rglob("*.py"))
    if "__pycache__" not in path.parts
}


def layer_of(module: str) -> int:
    best, best_length = None, -1
    for number, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > best_length:
                best, best_length = number, len(prefix)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return best


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(importer: str, node: ast.ImportFrom) -> str | None:
    if not node.level:
        return node.module
    base = importer.split(".")
    if not MODULES[importer].name == "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str) -> set[str]:
    """The package's modules that ``module`` imports."""
    tree = ast.parse(MODULES[module].read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            if target:
                for alias in node.names:
                    # "from package import module" imports the module.
                    candidate = f"{target}.{alias.name}"
                    found.add(candidate if candidate in MODULES else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down(module):
    upward = [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {imported} "
        f"({LAYERS[layer_of(imported)][0]})"
        for imported in sorted(GRAPH[module])
        if layer_of(imported) > layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    cycles = []
    state: dict[str, str] = {}
    stack: list[str] = []

    def walk(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for imported in sorted(GRAPH[module]):
            if state.get(imported) == "open":
                cycles.append(stack[stack.index(imported) :] + [imported])
            elif imported not in state:
                walk(imported)
        stack.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            walk(module)
    # The package's __init__ modules are imported on the way to any module
    # below them; only cycles between real modules count.
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_check_sees_function_level_imports():
    """The reader must catch imports inside functions (the cycles this test
    guards against were hidden there)."""
    assert f"{PACKAGE}.ai" in GRAPH[f"{PACKAGE}.ai_settings_form"]  # Inside functions.


def test_moved_names_keep_their_documented_import_paths():
    """Code moved to its own layer stays importable where users (and their
    migrations) import it from."""
    from wagtail_vector_index import index, pages, site_overrides
    from wagtail_vector_index.ai_utils.backends import echo, offline
    from wagtail_vector_index.index import mixins
    from wagtail_vector_index.models import CACHE_KEY, get_site_overrides

    assert index.AIBackendsMixin is mixins.AIBackendsMixin is pages.AIBackendsMixin
    assert echo.EchoChatBackend is offline.EchoChatBackend
    assert echo.HashingEmbeddingBackend is offline.HashingEmbeddingBackend
    assert get_site_overrides is site_overrides.get_site_overrides
    assert CACHE_KEY == site_overrides.CACHE_KEY


#: docs/architecture.md's table of kept import paths: (kept module, names,
#: the module the names live in now).
KEPT_PATHS = [
    ("index.pgvector", ["PgvectorStorage"], "index.storage.pgvector"),
    (
        "index.storage",
        ["DatabaseStorage", "to_bytes", "from_bytes", "normalise"],
        "index.storage.database",
    ),
    (
        "ai_utils.backends.echo",
        ["EchoChatBackend", "HashingEmbeddingBackend"],
        "ai_utils.backends.offline",
    ),
    ("models", ["CACHE_KEY", "get_site_overrides"], "site_overrides"),
    ("storage.models", ["VectorIndexedMixin", "EmbeddingField"], "index"),
]


@pytest.mark.parametrize(("kept", "names", "home"), KEPT_PATHS)
def test_kept_paths_point_at_the_code_and_are_documented(kept, names, home):
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = importlib.import_module(f"{PACKAGE}.{kept}")
        new = importlib.import_module(f"{PACKAGE}.{home}")
        for name in names:
            assert getattr(old, name) is getattr(new, name), name
    table = (ROOT.parent / "docs" / "architecture.md").read_text()
    section = table.split("## Kept import paths", 1)[1]
    assert f"`{PACKAGE}.{kept}" in section


@pytest.mark.parametrize("kept", ["index.pgvector", "ai_utils.backends.echo"])
def test_nothing_in_the_package_imports_through_a_kept_module(kept):
    users = [
        module for module, imported in GRAPH.items() if f"{PACKAGE}.{kept}" in imported
    ]
    assert users == []
