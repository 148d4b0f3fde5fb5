from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("kissim.__main__") is None:  # pragma: no cover - during development only
    pytest.skip("the KIS simulator is not available", allow_module_level=True)
