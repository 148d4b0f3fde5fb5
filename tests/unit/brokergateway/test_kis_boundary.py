"""Only brokergateway/kis/ knows how KIS spells its fields: the rest of the gateway works with the
project's types. A KIS field name read anywhere else (``row.get("hldg_qty")``, ``row["odno"]``) fails
this test, naming the file and line, so a newcomer moves the parsing into kis/ instead."""

from __future__ import annotations

import ast
from pathlib import Path

GATEWAY = Path(__file__).resolve().parents[3] / "brokergateway"
KIS = GATEWAY / "kis"


def read_keys(tree: ast.AST) -> set[tuple[str, int]]:
    """String keys read from a mapping: ``x.get("k")``, ``x.get("k", d)`` and ``x["k"]``."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add((node.args[0].value, node.lineno))
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            found.add((node.slice.value, node.lineno))
    return found


def kis_field_names() -> set[str]:
    names = {key for path in KIS.glob("*.py") for key, _ in read_keys(ast.parse(path.read_text()))}
    return {name for name in names if name.islower() or name.startswith(("rt_", "msg"))}


def test_kis_knows_a_good_many_field_names() -> None:
    names = kis_field_names()
    assert {"hldg_qty", "odno", "stck_prpr", "ovrs_cblc_qty", "tot_ccld_qty"} <= names


def test_no_kis_field_name_is_read_outside_kis() -> None:
    names = kis_field_names()
    leaks = [
        f"{path.relative_to(GATEWAY.parent)}:{line} reads KIS's {key!r}"
        for path in sorted(GATEWAY.glob("*.py"))
        for key, line in sorted(read_keys(ast.parse(path.read_text())))
        if key in names
    ]
    assert leaks == []


def test_the_check_sees_a_leak() -> None:
    leaked = ast.parse('def positions(row):\n    return row.get("hldg_qty"), row["pdno"]\n')
    assert {key for key, _ in read_keys(leaked)} == {"hldg_qty", "pdno"}
