"""The option types and groups that the commands share (kikuchi.cli._options)."""

from __future__ import annotations

import argparse
import os
import re

import pytest

from kikuchi._cpus import available_cpus
from kikuchi.cli._options import add_execution_arguments, execution_options, numbers, positive_int, row_col, rows_cols


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kikuchi test", exit_on_error=False)
    add_execution_arguments(parser)
    return parser


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"executor": "threads", "workers": available_cpus(), "scheduler": None} if available_cpus() > 1 else {"executor": "serial", "workers": None, "scheduler": None}),
        (["--threads", "3"], {"executor": "threads", "workers": 3, "scheduler": None}),
        (["--threads", "1"], {"executor": "serial", "workers": None, "scheduler": None}),
        (["--workers", "2"], {"executor": "distributed", "workers": 2, "scheduler": None}),
        (["--scheduler", "tcp://host:8786"], {"executor": "distributed", "workers": None, "scheduler": "tcp://host:8786"}),
    ],
)
def test_execution_options(argv, expected):
    assert execution_options(_parser().parse_args(argv)) == expected


def test_default_threads_are_the_cpus_this_process_may_use(monkeypatch):
    """A job given 3 of a node's 64 cores (its affinity mask) runs on 3 threads, not 64."""
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4, 5, 6}, raising=False)
    assert available_cpus() == 3
    assert execution_options(_parser().parse_args([])) == {"executor": "threads", "workers": 3, "scheduler": None}
    monkeypatch.delattr(os, "sched_getaffinity")  # no affinity masks (macOS, Windows): the CPU count
    assert available_cpus() == 64


def test_execution_options_exclude_each_other():
    with pytest.raises(argparse.ArgumentError, match="argument --workers: not allowed with argument --threads"):
        _parser().parse_args(["--threads", "2", "--workers", "2"])


def test_argument_types_and_their_messages():
    assert positive_int("4") == 4 and rows_cols("40X50") == (40, 50) and row_col("-1,3") == (-1, 3)
    assert numbers("1,2,3", 3, float) == (1.0, 2.0, 3.0) and numbers("1,2", 3, float) is None and numbers("a,b", 2, int) is None
    for parse, text, message in [
        (positive_int, "0", "expected a positive integer, got 0"),
        (positive_int, "two", "expected a positive integer, got 'two'"),
        (rows_cols, "40by50", "expected ROWSxCOLS such as 40x50, got '40by50'"),
        (rows_cols, "0x50", "shape must be positive, got '0x50'"),
        (row_col, "1", "expected ROW,COL (two integers), got '1'"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
            parse(text)
