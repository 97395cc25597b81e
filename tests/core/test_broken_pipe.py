"""A reader that goes away (``maildrill report … | head -1``) ends the command quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from maildrill.results import write_results
from tests.reports import sample


# buffered, stdout's bytes are written at exit, after the command has returned
@pytest.mark.parametrize("unbuffered", ["", "1"], ids=["buffered", "unbuffered"])
def test_a_closed_stdout_gives_no_traceback(tmp_path: Path, unbuffered: str) -> None:
    results = tmp_path / "results.json"
    write_results(sample.run(), results)
    read, write = os.pipe()
    os.close(read)  # nobody reads: the first line written raises BrokenPipeError
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "maildrill", "report", str(results), "--out", str(tmp_path)],
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
            env={**os.environ, "PYTHONUNBUFFERED": unbuffered},
        )  # fmt: skip
    finally:
        os.close(write)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 141  # 128 + SIGPIPE, as a shell reports it
    assert (tmp_path / "report.html").is_file()  # the work was done before the pipe broke
