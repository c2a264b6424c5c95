"""The house rules a newcomer relies on: imports point one way, no circles, short modules that say what they hold."""

from __future__ import annotations

import ast

from tests.architecture.imports import app_modules, cycles, import_graph, layer_of

MAX_LINES = 500


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_imports_point_one_way_data_layers_dashboard_callbacks_app():
    upward = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_data_never_imports_dash():
    offenders = []
    for module, path in app_modules().items():
        if not module.startswith(("data", "layers")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            if any(n == "dash" or n.startswith(("dash.", "dash_")) for n in names):
                offenders.append(module)
    assert offenders == []


def test_every_module_fits_a_readers_page():
    long = {
        module: n
        for module, path in app_modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_module_opens_with_a_docstring():
    missing = [
        module for module, path in app_modules().items() if not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert missing == []
