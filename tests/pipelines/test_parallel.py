"""The parallel execution layer: serial == local cluster, lost workers, resumption."""

import os
import threading

import numpy as np
import pytest

from operando.errors import ParameterError
from operando.pipelines._parallel import (
    ExecutorConfig,
    JobFailedError,
    JobStore,
    job_digest,
    map_jobs,
    selftest_fit,
    wait_seconds,
)

CALLS: list[str] = []


def counted(i: int) -> dict:
    CALLS.append(str(i))
    return {"square": np.array([i * i])}


def flaky(i: int) -> dict:
    raise ValueError(f"bad job {i}")


def test_local_cluster_matches_serial(tmp_path):
    jobs = {f"fit{s}": {"seed": s} for s in range(4)}
    serial = map_jobs(selftest_fit, jobs, executor=ExecutorConfig("serial"))
    local = map_jobs(
        selftest_fit, jobs, executor=ExecutorConfig("local", workers=2), store=tmp_path / "store"
    )
    assert list(local) == list(jobs)
    for jid in jobs:
        # same float64 code on the same machine: bitwise equal
        assert local[jid]["a"] == serial[jid]["a"] and local[jid]["b"] == serial[jid]["b"]
        assert local[jid]["x64"] is True
        assert local[jid]["pid"] != serial[jid]["pid"]  # really ran in worker processes
        assert abs(local[jid]["b"] - 1.3) < 0.05
    assert len(list((tmp_path / "store").glob("*.npz"))) == 4
    # fewer than two CPUs per worker: each worker is pinned to a CPU of its own
    if hasattr(os, "sched_getaffinity"):
        mine = sorted(os.sched_getaffinity(0))
        cpus = {local[j]["pid"]: tuple(local[j]["cpus"]) for j in jobs}
        if len(mine) < 2 * 2:
            assert all(len(c) == 1 and c[0] in mine for c in cpus.values()), cpus
            if len(cpus) == 2 and len(mine) >= 2:
                assert len(set(cpus.values())) == 2, cpus
        else:
            assert all(list(c) == mine for c in cpus.values()), cpus


@pytest.mark.slow  # ~30 s: starts a cluster and waits for the nanny to restart a worker
def test_lost_worker_is_tolerated(tmp_path):
    jobs = {f"w{i}": {"seconds": 1.0} for i in range(6)}
    killed = {}

    def kill_one(client):
        def killer():
            import os
            import time

            time.sleep(1.5)
            workers = list(client.scheduler_info()["workers"])
            killed["worker"] = workers[0]
            try:
                client.run(os._exit, 1, workers=[workers[0]])
            except Exception as e:  # the killed worker cannot answer: expected
                killed["error"] = type(e).__name__

        threading.Thread(target=killer, daemon=True).start()

    res = map_jobs(
        wait_seconds,
        jobs,
        executor=ExecutorConfig("local", workers=2),
        store=tmp_path,
        on_cluster=kill_one,
    )
    assert "worker" in killed
    assert set(res) == set(jobs) and all(r["slept"] >= 1.0 for r in res.values())


def test_interrupted_run_resumes_without_recomputing(tmp_path):
    CALLS.clear()
    jobs = {f"j{i}": {"i": i} for i in range(5)}

    def interrupt_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        map_jobs(
            counted,
            jobs,
            executor=ExecutorConfig("serial"),
            store=tmp_path,
            progress=interrupt_after_two,
        )
    assert CALLS == ["0", "1"]
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert not list(tmp_path.glob(".*tmp-*"))
    res = map_jobs(counted, jobs, executor=ExecutorConfig("serial"), store=tmp_path)
    assert CALLS == ["0", "1", "2", "3", "4"]  # finished jobs were loaded, not recomputed
    assert [int(r["square"][0]) for r in res.values()] == [0, 1, 4, 9, 16]
    # a changed parameter or salt (input checksum) invalidates the stored result
    assert job_digest(counted, {"i": 1}) != job_digest(counted, {"i": 1}, salt={"f": "abc"})
    map_jobs(
        counted,
        {"j1": {"i": 1}},
        executor=ExecutorConfig("serial"),
        store=tmp_path,
        salt={"input": "changed"},
    )
    assert CALLS[-1] == "1"


def test_store_roundtrip(tmp_path):
    store = JobStore(tmp_path)
    d = job_digest(counted, {"i": np.arange(3)})
    store.save("x/y", d, {"arr": np.eye(2), "value": np.float64(1.5), "name": "ok"})
    back = store.load("x/y", d)
    np.testing.assert_array_equal(back["arr"], np.eye(2))
    assert back["value"] == 1.5 and back["name"] == "ok"


def test_failures_and_bad_config():
    with pytest.raises(JobFailedError, match="job 'k0'"):
        map_jobs(flaky, {"k0": {"i": 0}}, executor=ExecutorConfig("serial"), retries=1)
    with pytest.raises(ParameterError, match="workers"):
        ExecutorConfig(workers=0).resolved()
    with pytest.raises(ParameterError, match="cluster config"):
        ExecutorConfig("slurm").resolved()
    assert ExecutorConfig(workers=1).resolved().kind == "serial"
    assert ExecutorConfig(scheduler="tcp://x:1").resolved().kind == "scheduler"
