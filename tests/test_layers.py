"""The layers of the design, held by the imports: `checkout` (the domain) imports nothing from the
project (`shop`) or the stand-in payment system (`sandbox`); `sandbox` imports neither and talks
to the shop only over HTTP; and nothing imports a framework's or server's private names."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = {
    "django",
    "asgiref",
    "channels",
    "channels_redis",
    "daphne",
    "uvicorn",
    "websockets",
    "psycopg",
    "psycopg_pool",
}


def imports(package: str) -> list[tuple[str, str, list[str]]]:
    """(file, imported module, imported names) for every import under `package`."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(), relative)):
            if isinstance(node, ast.Import):
                found += [(relative, alias.name, []) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((relative, node.module, [alias.name for alias in node.names]))
    return found


def top(module: str) -> str:
    return module.partition(".")[0]


@pytest.mark.parametrize(
    "package, forbidden",
    [("checkout", {"shop", "sandbox"}), ("sandbox", {"shop", "checkout"})],
)
def test_a_layer_imports_nothing_from_the_layers_it_must_not_know(package, forbidden):
    wrong = [(file, module) for file, module, _ in imports(package) if top(module) in forbidden]
    assert wrong == []


@pytest.mark.parametrize("package", ["shop", "checkout", "sandbox", "bench"])
def test_no_module_imports_a_private_name_of_a_framework_or_server(package):
    private = [
        (file, module, names)
        for file, module, names in imports(package)
        if top(module) in FRAMEWORKS
        and (
            any(part.startswith("_") for part in module.split("."))
            or any(name.startswith("_") for name in names)
        )
    ]
    assert private == []


def test_the_checks_see_the_imports_they_judge():
    """The walk finds imports at all (a broken walk would pass every test above)."""
    found = {module for _, module, _ in imports("checkout")}
    assert {"django.db", "channels.generic.websocket"} <= found


def test_one_function_changes_an_orders_status():
    """`result_apply` (checkout/services/results.py), with the rules of checkout/states.py: no
    other module of the app assigns an order's status or updates it in bulk."""
    writes = re.compile(r"\border\.status\s*=(?!=)|\.update\([^)]*\bstatus\s*=")
    found = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "checkout").rglob("*.py")
        if "migrations" not in path.parts and writes.search(path.read_text())
    }
    assert found == {"checkout/services/results.py"}
