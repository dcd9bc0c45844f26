"""cli: ``--help`` without the heavy modules, the exit-code table of SPEC.md section 5, one line per error.

``main(argv)`` returns the exit status; these tests call it in-process (``hladr run`` itself is
tested end to end in test_run_cli.py and test_batch.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hladr import __version__, cli
from hladr.cli import main, template_cache_dir
from hladr.errors import ConfigError

COMMANDS = ("run", "calibrate", "inspect", "gate", "lots", "calibration", "simulate", "export", "results", "audit")


def _err_lines(capsys) -> tuple[str, list[str]]:
    got = capsys.readouterr()
    return got.out, got.err.splitlines()


def test_the_exit_code_table():
    # SPEC.md section 5 and the module docstring: one table for every command
    assert (cli.EXIT_OK, cli.EXIT_FAIL, cli.EXIT_CANNOT_RUN) == (0, 1, 2)
    assert (cli.EXIT_INTERRUPTED, cli.EXIT_TERMINATED) == (130, 143)  # 128 + SIGINT, 128 + SIGTERM
    assert (cli.EXIT_INTERRUPTED, cli.EXIT_TERMINATED) == (128 + signal.SIGINT, 128 + signal.SIGTERM)


# --------------------------------------------------------------------------- help and version
def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out, err = _err_lines(capsys)
    assert out.startswith("usage: hladr") and err == []
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_its_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: hladr {command}")


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"hladr {__version__}"


def test_help_loads_none_of_the_heavy_modules():
    # the commands' modules are imported by the command that needs them (cli.py's docstring)
    code = ("import sys; from hladr.cli import main; code = main(['--help']); "
            "print(code, sorted(m for m in ('numpy', 'numba', 'scipy', 'sklearn', 'flowkit', 'matplotlib') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "0 []"


# --------------------------------------------------------------------------- bad arguments: exit 2, one line
@pytest.mark.parametrize(("argv", "words"), [
    ([], "the following arguments are required: COMMAND"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["run", "day1"], "the following arguments are required: --out"),
    (["run", "day1", "--out", "o", "--workers", "two"], "argument --workers: invalid int value: 'two'"),
    (["run", "day1", "--out", "o", "--lot", "96597", "--lot-file", "l.toml"], "not allowed with argument"),
    (["calibrate", "beads.fcs"], "one of the arguments --lot --lot-file is required"),
    (["simulate", "o", "--samples", "0"], "argument --samples: must be at least 1, not 0"),
    (["simulate", "o", "--events", "99"], "argument --events: must be at least 100, not 99"),
    (["simulate", "o", "--seed", "x"], "argument --seed: 'x' is not a whole number"),
    (["calibration", "history", "--since", "2026-13-01"], "'2026-13-01' is not a date (YYYY-MM-DD)"),
    (["results"], "the following arguments are required: {list,show,amend}"),
    (["results", "list", "--run", "R", "--since", "2026-01-01"], "not allowed with argument"),
    (["results", "list", "--since", "yesterday"], "'yesterday' is not a date (YYYY-MM-DD)"),
    (["results", "amend", "P001", "--ferritin", "10"], "the following arguments are required: --reason"),
    (["results", "amend", "P001", "--reason", "typo"], "the following arguments are required: --ferritin"),
    (["audit", "check"], "invalid choice: 'check'"),
    (["export", "--since", "2026-02-30", "--format", "csv", "--out", "x"], "'2026-02-30' is not a date"),
])
def test_bad_arguments_exit_2_with_one_line(argv, words, capsys):
    assert main(argv) == 2
    out, err = _err_lines(capsys)
    assert out == ""
    assert len(err) == 2 and err[0].startswith("hladr") and words in err[0]
    assert err[1] == "try 'hladr --help'"


# --------------------------------------------------------------------------- errors from the commands
def test_an_input_error_is_one_line_naming_the_command(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "absent.fcs")]) == 2
    out, err = _err_lines(capsys)
    assert out == "" and len(err) == 1
    assert err[0].startswith("hladr inspect: error: ") and "absent.fcs" in err[0] and "no such file" in err[0]


def test_an_error_line_shows_no_control_characters(tmp_path, capsys):
    name = tmp_path / "a\x1b[2Jb\u202ec.fcs"  # a terminal escape and a right-to-left override in a file name
    assert main(["inspect", str(name)]) == 2
    _, err = _err_lines(capsys)
    assert len(err) == 1 and "a?[2Jb?c.fcs" in err[0]
    assert not any(ch in err[0] for ch in ("\x1b", "\u202e"))


def test_a_config_error_from_a_command(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "sim"), "--samples", "3", "--sample-profile", "5=sepsis"]) == 2
    _, err = _err_lines(capsys)
    assert err == ["hladr simulate: error: --sample-profile '5=sepsis': expected N=PROFILE[:SCENARIO+...] "
                   "with N in 1..3"]
    assert not (tmp_path / "sim").exists()


def test_lots_list_and_an_unknown_lot(capsys):
    assert main(["lots", "list"]) == 0
    assert "96597" in capsys.readouterr().out
    assert main(["lots", "show", "nope"]) == 2
    _, err = _err_lines(capsys)
    assert err == ["hladr lots: error: unknown bead lot 'nope' (known lots: 96597); use --lot-file FILE"]


def _command(monkeypatch, action) -> None:
    """Replace ``hladr lots`` by ``action`` (the exception paths of ``main`` are the same for every command)."""
    monkeypatch.setitem(cli._COMMANDS, "lots", lambda args: action())


def test_an_os_error_is_one_line_with_the_file(monkeypatch, capsys):
    def refuse():
        raise PermissionError(13, "Permission denied", "/lab/out/results.csv")

    _command(monkeypatch, refuse)
    assert main(["lots", "list"]) == 2
    _, err = _err_lines(capsys)
    assert err == ["hladr lots: error: Permission denied: /lab/out/results.csv"]


def test_a_hladr_error_with_a_line_break_stays_one_line(monkeypatch, capsys):
    def refuse():
        raise ConfigError("first\nsecond")

    _command(monkeypatch, refuse)
    assert main(["lots", "list"]) == 2
    _, err = _err_lines(capsys)
    assert len(err) == 1 and err[0].startswith("hladr lots: error: first")


def test_ctrl_c_exits_130(monkeypatch, capsys):
    def interrupted():
        raise KeyboardInterrupt

    _command(monkeypatch, interrupted)
    assert main(["lots", "list"]) == 130
    assert _err_lines(capsys)[1] == ["hladr lots: interrupted"]


def test_sigterm_exits_143_and_the_handler_is_restored(monkeypatch, capsys):
    def terminated():
        os.kill(os.getpid(), signal.SIGTERM)  # the handler main installed turns it into an exception
        time.sleep(5)
        pytest.fail("SIGTERM did not stop the command")

    before = signal.getsignal(signal.SIGTERM)
    _command(monkeypatch, terminated)
    assert main(["lots", "list"]) == 143
    assert _err_lines(capsys)[1] == ["hladr lots: terminated (SIGTERM)"]
    assert signal.getsignal(signal.SIGTERM) == before


# --------------------------------------------------------------------------- where templates are kept
def test_template_cache_dir_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HLADR_CACHE", str(tmp_path / "c"))
    assert template_cache_dir() == tmp_path / "c" / "templates"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for unset in ("", None):
        if unset is None:
            monkeypatch.delenv("HLADR_CACHE")
        else:
            monkeypatch.setenv("HLADR_CACHE", unset)
        assert template_cache_dir() == Path(tmp_path / "home" / ".cache" / "hladr" / "templates")
