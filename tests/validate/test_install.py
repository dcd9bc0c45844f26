"""hladr validate on a clean install: the wheel built from this copy (with its hatch_build.py file list),
installed with --no-deps into a fresh venv whose dependencies come from the project's venv (no network).
`hladr validate --quick` passes there; a rule table edited after installation fails it, naming the file
(iq.files) and the phenotype case (oq.phenotype_boundaries).

About 90 s: the fresh install compiles its Numba kernels on its first run."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, **kw)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """The venv's bin folder, hladr installed there from a wheel of this copy."""
    pytest.importorskip("hatchling", reason="building the wheel needs hatchling (the test extra)")
    tmp = tmp_path_factory.mktemp("fresh")
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                  str(tmp / "wheel"), str(REPO)])
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp / "wheel").glob("hladr-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        listed = z.read("hladr/_files.sha256").decode().splitlines()
    assert {"hladr/data/validation/fcs/manifest.json", "hladr/data/validation/gatingml/data1.fcs",
            "hladr/calibration/96597.toml"} <= names  # no .gitignore pattern drops the shipped cases
    assert {line.split("  ", 1)[1] for line in listed} == {
        n for n in names if n.startswith("hladr/") and n != "hladr/_files.sha256"}
    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert made.returncode == 0, made.stderr
    py = venv / "bin" / "python"
    # the project venv's packages after the fresh venv's own: dependencies from there, hladr from the wheel (a
    # plain path line: the project venv's own .pth files, among them its editable hladr, are not processed)
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    project = [p for p in site.getsitepackages() if p.startswith(sys.prefix)] or [sysconfig.get_path("purelib")]
    (purelib / "zz_project_venv.pth").write_text("\n".join(project) + "\n")
    inst = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
                 str(wheel)])
    assert inst.returncode == 0, inst.stderr[-2000:]
    where = _run([str(py), "-c", "import hladr; print(hladr.__file__)"])
    assert where.stdout.strip() == str(purelib / "hladr" / "__init__.py"), where
    return venv / "bin"


def test_quick_validation_passes_on_a_clean_install(fresh, tmp_path):
    done = _run([str(fresh / "hladr"), "validate", "--out", str(tmp_path / "v"), "--quick"], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    doc = json.loads((tmp_path / "v" / "validation.json").read_text())
    files = next(c for c in doc["checks"] if c["id"] == "iq.files")
    assert files["passed"] and files["value"].endswith("files match") and files["value"].split()[0] == \
        files["value"].split()[2]
    assert doc["facts"]["package_folder"].startswith(str(fresh.parent))
    assert "pass  iq.files" in done.stderr and "validation PASSED" in done.stdout


def test_an_edited_rule_table_fails_and_is_named(fresh, tmp_path):
    table = next(fresh.parent.glob("lib/python*/site-packages/hladr/data/rules/immunosep-2025.toml"))
    text = table.read_text()
    table.write_text(text.replace("mals_ferritin_ng_ml = 4420.0", "mals_ferritin_ng_ml = 4400.0"))
    try:
        done = _run([str(fresh / "hladr"), "validate", "--out", str(tmp_path / "v"), "--quick", "--quiet"],
                    cwd=tmp_path)
    finally:
        table.write_text(text)
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    failed = [line for line in done.stderr.splitlines() if line.startswith("hladr validate: FAILED")]
    assert any("iq.files" in line and "changed: hladr/data/rules/immunosep-2025.toml" in line for line in failed)
    assert any("oq.phenotype_boundaries" in line and "expected immunoparalysis" in line for line in failed)
    doc = json.loads((tmp_path / "v" / "validation.json").read_text())
    assert doc["passed"] is False and {"iq.files", "oq.phenotype_boundaries"} <= set(doc["failed_checks"])
