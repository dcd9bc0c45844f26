"""batch.cluster: ``hladr run --scheduler`` on a two-worker ``LocalCluster`` (127.0.0.1, processes, one thread
each) gives the serial run's results, with the files' bytes shipped too, and with a worker killed mid-run
(nothing lost, nothing duplicated); a missing Dask or an unreachable scheduler is one line, exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hladr.batch import cluster
from hladr.batch.cluster import DaskSession, threads_plan
from hladr.batch.daily import run_folder
from hladr.cli import main
from hladr.errors import ConfigError, HladrError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_fcs"
TEMPLATE = REPO / "tests" / "data" / "monocytes_template.xml"


def _samples(out: Path) -> list[dict]:
    """results.json's samples less their timings (which differ from run to run)."""
    samples = json.loads((out / "results.json").read_text())["samples"]
    for s in samples:
        s.pop("timings_ms")
    return samples


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("serial") / "out"
    assert run_folder(str(EXAMPLE), str(out), quiet=True) == 1  # the example has one failed tube by design
    return _samples(out)


@pytest.fixture(scope="module")
def local_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, worker_dashboard_address=None) as c:
        yield c


def test_the_cluster_gives_the_serial_results(serial, local_cluster, tmp_path):
    out = tmp_path / "out"
    code = main(["run", str(EXAMPLE), "--out", str(out), "--quiet", "--scheduler", local_cluster.scheduler_address])
    assert code == 1
    assert _samples(out) == serial
    assert [s["sample_id"] for s in serial] == [f"P{k:03d}" for k in range(1, 11)]


def test_shipped_bytes_give_the_same_results(serial, local_cluster, tmp_path):
    out = tmp_path / "out"
    assert run_folder(str(EXAMPLE), str(out), quiet=True, scheduler=local_cluster.scheduler_address,
                      ship_files=True) == 1
    got = _samples(out)
    assert got == serial  # the same file names, SHA-256 and configuration digest as read in place
    assert all(len(s["sha256"]) == 64 for s in got)


def test_a_template_shipped_with_the_bytes_gives_the_same_results(local_cluster, tmp_path):
    """--gates and a per-tube ``gates`` column, the workers reading nothing of the run folder: the same results
    (the same template name and SHA-256, the same configuration digest) as in place, serially."""
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    lines = (EXAMPLE / "worklist.csv").read_text().splitlines()
    keep = [lines[0] + ",gates", lines[1] + ",", lines[2] + ",", lines[3] + ",tube_gates.xml"]
    (run / "worklist.csv").write_text("\n".join(keep) + "\n")
    for name in ("beads.fcs", "P001_HLADR.fcs", "P002_HLADR.fcs"):
        shutil.copy(EXAMPLE / name, run / name)
    shutil.copy(TEMPLATE, run / "tube_gates.xml")
    serial_out, shipped_out = tmp_path / "serial", tmp_path / "shipped"
    for out, extra in ((serial_out, {}), (shipped_out, {"scheduler": local_cluster.scheduler_address,
                                                           "ship_files": True})):
        run_folder(str(run), str(out), quiet=True, gates_file=str(TEMPLATE), **extra)
    got, want = _samples(shipped_out), _samples(serial_out)
    assert got == want
    assert [s["gate"]["template"] for s in got] == ["monocytes_template.xml", "tube_gates.xml"]


def test_an_unreadable_tube_fails_alone_when_shipping_too(local_cluster, tmp_path):
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    lines = (EXAMPLE / "worklist.csv").read_text().splitlines()
    (run / "worklist.csv").write_text("\n".join(lines[:4]) + "\n")
    for name in ("beads.fcs", "P002_HLADR.fcs"):  # P001's file is missing
        shutil.copy(EXAMPLE / name, run / name)
    serial_out, shipped_out = tmp_path / "serial", tmp_path / "shipped"
    assert run_folder(str(run), str(serial_out), quiet=True) == 1
    assert run_folder(str(run), str(shipped_out), quiet=True, scheduler=local_cluster.scheduler_address,
                      ship_files=True) == 1
    got = _samples(shipped_out)
    assert got == _samples(serial_out)
    assert [s["qc"] for s in got][0] == "fail" and got[1]["sha256"]


def test_a_batch_on_the_cluster_then_resumed(serial, local_cluster, tmp_path, capsys):
    import shutil

    shutil.copytree(EXAMPLE, tmp_path / "day")
    (tmp_path / "m.csv").write_text("run_dir,out_dir\nday,out/day\n")
    argv = ["batch", str(tmp_path / "m.csv"), "--quiet", "--scheduler", local_cluster.scheduler_address,
            "--ship-files"]
    assert main(argv) == 1  # the example's failed tube
    assert _samples(tmp_path / "out" / "day") == serial
    assert "runs: 1 done, 0 skipped, 0 failed; samples: 8 pass, 1 warn, 1 fail" in capsys.readouterr().err
    assert main(argv) == 1
    assert "runs: 0 done, 1 skipped, 0 failed; samples: 8 pass, 1 warn, 1 fail" in capsys.readouterr().err


def test_threads_per_tube_never_oversubscribe():
    workers = {"a": {"host": "n1", "nthreads": 1}, "b": {"host": "n1", "nthreads": 1},
               "c": {"host": "n2", "nthreads": 4}, "d": {"host": "n3", "nthreads": 8}}
    plan = threads_plan(workers, {"a": 8, "b": 8, "c": 16, "d": 4})
    assert plan == {"a": 4, "b": 4, "c": 4, "d": 1}
    for host, cores in (("n1", 8), ("n2", 16), ("n3", 4)):
        used = sum(plan[a] * w["nthreads"] for a, w in workers.items() if w["host"] == host)
        assert used <= max(cores, sum(w["nthreads"] for w in workers.values() if w["host"] == host))


def test_the_plan_of_the_local_cluster(local_cluster):
    from distributed import Client

    with Client(local_cluster.scheduler_address, set_as_default=False) as client:
        plan = DaskSession(client, local_cluster.scheduler_address).plan()
    assert len(plan) == 2
    assert all(n == max(1, cluster.usable_cores() // 2) for n in plan.values())


def test_an_unreachable_scheduler_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 0.5)
    code = main(["run", str(EXAMPLE), "--out", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("hladr run: error: --scheduler tcp://127.0.0.1:9: cannot reach the Dask scheduler")
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()


def test_workers_of_another_hladr_version_are_refused(local_cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "__version__", "0.0.0-other")  # this machine, as if it ran another version
    with pytest.raises(HladrError, match=r"the Dask workers run hladr \S+, this machine 0.0.0-other"):
        run_folder(str(EXAMPLE), str(tmp_path / "out"), quiet=True, scheduler=local_cluster.scheduler_address)
    assert not (tmp_path / "out").exists()  # refused on connecting, before any work


def test_batch_with_an_unreachable_scheduler_does_not_start(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 0.5)
    (tmp_path / "m.csv").write_text(f"run_dir,out_dir\n{EXAMPLE},out\n")
    assert main(["batch", str(tmp_path / "m.csv"), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hladr batch: error: --scheduler tcp://127.0.0.1:9: cannot reach") and err.count("\n") == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "m.done.json").exists()


def test_without_dask_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    wanted = r"needs Dask distributed, which is not installed: pip install 'hladr\[dask\]'"
    with pytest.raises(ConfigError, match=wanted):
        run_folder(str(EXAMPLE), str(tmp_path / "out"), scheduler="tcp://127.0.0.1:9", quiet=True)


def test_importing_the_batch_does_not_load_dask():
    code = ("import sys, hladr.batch, hladr.batch.daily, hladr.batch.study, hladr.batch.cluster; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


class _KillOne(DaskSession):
    """A session that kills (SIGKILL) a worker holding tubes as soon as the first tube's result is in."""

    killed: list[tuple[str, int]]

    def analyse(self, inputs, calibration, config, on_done, template_cache=None):
        pids = self.client.run(os.getpid)
        self.killed = []

        def kill_after_first(result):
            on_done(result)
            if not self.killed:
                busy = {a: len(keys) for a, keys in self.client.processing().items() if keys}
                victim = max(busy, key=busy.get)
                os.kill(pids[victim], signal.SIGKILL)
                self.killed.append((victim, busy[victim]))

        return super().analyse(inputs, calibration, config, kill_after_first, template_cache)


def test_a_killed_worker_loses_and_duplicates_nothing(serial, local_cluster, tmp_path):
    """Last in the module: the cluster's nanny restarts the killed worker, but it starts cold."""
    from distributed import Client

    seen: list[str] = []
    with Client(local_cluster.scheduler_address, set_as_default=False) as client:
        session = _KillOne(client, local_cluster.scheduler_address)
        original = session.analyse

        def counting(inputs, calibration, config, on_done, template_cache=None):
            return original(inputs, calibration, config, lambda r: (seen.append(r.sample_id), on_done(r)),
                            template_cache)

        session.analyse = counting
        assert run_folder(str(EXAMPLE), str(tmp_path / "out"), quiet=True, session=session) == 1
    victim, holding = session.killed[0]
    assert holding >= 1  # the worker killed had tubes in hand: they were analysed elsewhere
    assert sorted(seen) == [f"P{k:03d}" for k in range(1, 11)]  # each tube's result arrived once
    assert _samples(tmp_path / "out") == serial
