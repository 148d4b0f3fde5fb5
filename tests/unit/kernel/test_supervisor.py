"""``yquant up`` stops every process it starts, in order, Valkey last."""

from __future__ import annotations

from pathlib import Path

import pytest

from yquant.supervisor import STOP_ORDER, Layout, build_children


def test_every_process_yquant_up_can_start_is_stopped_before_valkey(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YQ_NOTIFIER__DESTINATIONS", '{"phone": {"kind": "telegram"}}')  # the notifier starts too
    layout = Layout(tmp_path, 1, 2, 3, 4, "secret-for-the-layout", use_simulator=True, kissim_args=[])
    names = [child.name for child in build_children(layout)]
    assert "notifier" in names
    assert sorted(names) == sorted(STOP_ORDER)
    assert STOP_ORDER[-1] == "valkey"
