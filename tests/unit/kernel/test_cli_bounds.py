"""Every number the console accepts is bounded: a usage error naming the option, never an
unbounded read or an endless wait (``--limit 0`` once listed every order ever made)."""

from __future__ import annotations

import pytest

from yquant.cli import build_parser


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["orders", "--limit", "0"], "argument --limit: 0 is not from 1 to 1,000"),
        (["orders", "--limit", "-1"], "argument --limit: -1 is not from 1 to 1,000"),
        (["signals", "--limit", "1000000000"], "argument --limit: 1000000000 is not from 1 to 1,000"),
        (["signals", "--limit", "1e3"], "argument --limit: '1e3' is not a whole number"),
        (["signal", "--quantity", "0"], "argument --quantity: 0 is not from 1 to 1,000,000"),
        (["signal", "--quantity", "99999999999999999999"], "is not from 1 to 1,000,000"),
        (["cancel", "yq-1", "--wait", "inf"], "argument --wait: inf is not from 0 to 300 seconds"),
        (["cancel", "yq-1", "--wait", "nan"], "argument --wait: nan is not from 0 to 300 seconds"),
        (["cancel", "yq-1", "--wait", "1e999"], "argument --wait: 1e999 is not from 0 to 300 seconds"),
        (["cancel", "yq-1", "--wait", "-1"], "argument --wait: -1 is not from 0 to 300 seconds"),
        (["cancel", "yq-1", "--wait", "soon"], "argument --wait: 'soon' is not a number of seconds"),
    ],
)
def test_an_out_of_range_number_is_a_usage_error_that_names_the_option(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "attribute", "value"),
    [
        (["orders"], "limit", 50),
        (["orders", "--limit", "1000"], "limit", 1000),
        (["signals", "--limit", "1"], "limit", 1),
        (["signal", "--quantity", "1000000"], "quantity", 1_000_000),
        (["cancel", "yq-1", "--wait", "300"], "wait", 300.0),
        (["cancel", "yq-1", "--wait", "0.5"], "wait", 0.5),
    ],
)
def test_numbers_in_range_are_taken_as_given(argv: list[str], attribute: str, value: float) -> None:
    assert getattr(build_parser().parse_args(argv), attribute) == value
