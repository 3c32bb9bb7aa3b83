"""Issue 11 item 23: imports follow the layers (no lower layer imports the gateway or metering for a
shared name), and the dead code is gone."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import modelmeter

SRC = Path(modelmeter.__file__).resolve().parent

# package -> packages of ours it must not import
FORBIDDEN = {
    "upstreams": ("modelmeter.gateway",),
    "auth": ("modelmeter.gateway",),  # auth prices reservations with metering's Pricer: a lower layer
    "storage": ("modelmeter.metering", "modelmeter.gateway"),
}


def imports_of(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_upwards(package: str) -> None:
    wrong = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in sorted((SRC / package).glob("*.py"))
        for name in imports_of(path)
        if name.startswith(FORBIDDEN[package])
    ]
    assert wrong == []


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("modelmeter.storage.histogram", "merge_all"),
        ("modelmeter.upstreams.embedded", "EmbeddedModels.start_all"),
        ("modelmeter.metering.redact", "SECRET_HEADERS"),
        ("modelmeter.metering.pricing", "decimal_to_json"),
    ],
)
def test_dead_code_is_gone(module: str, name: str) -> None:
    obj: object = importlib.import_module(module)
    *owners, last = name.split(".")
    for owner in owners:
        obj = getattr(obj, owner)
    assert not hasattr(obj, last), f"{module}.{name} is unused: remove it"


def test_shared_names_have_a_neutral_home() -> None:
    from modelmeter.error_shape import error_body
    from modelmeter.gateway.errors import error_body as via_gateway
    from modelmeter.units import PICO, iso

    assert error_body is via_gateway and PICO == 10**12
    assert iso(1_764_921_600_000_000) == "2025-12-05T08:00:00.000000Z"
    assert error_body("m", "t") == {"error": {"message": "m", "type": "t", "param": None, "code": None}}
