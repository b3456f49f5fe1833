"""Several devices through tf.distribute: the same seed gives the same images as one device."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import MULTIWORKER

from xplique_maco import History, Neuron, maco

TESTS = Path(__file__).parents[1]
WORKERS = TESTS / "workers"
ENVIRONMENT = {
    **{name: value for name, value in os.environ.items() if name != "TF_CONFIG"},
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)]),
}


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus_matches_one_device():
    run = subprocess.run(
        [sys.executable, str(WORKERS / "distributed_check.py")],
        env=ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["devices"] == ["CPU:0", "CPU:1"]
    assert result["shape"] == [5, 40, 40, 3] and result["history"] == [6, 5]
    assert result["image"] < 1e-4
    assert result["transparency"] < 1e-3
    assert result["retraces"] == 0
    assert result["small"] < 1e-4
    assert result["diversity"] < 1e-4


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now: bound together (so distinct), then released for the workers."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for bound in sockets:
            bound.bind(("127.0.0.1", 0))
        return [bound.getsockname()[1] for bound in sockets]
    finally:
        for bound in sockets:
            bound.close()


def wait_all(processes: list[subprocess.Popen], timeout: float) -> None:
    """Until all exit, one fails (the others would wait for it forever) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        codes = [process.poll() for process in processes]
        if all(code is not None for code in codes) or any(code not in (None, 0) for code in codes):
            return
        time.sleep(0.2)


@pytest.mark.slow
def test_two_workers_on_localhost_give_every_worker_the_images_of_one_device(model, tmp_path):
    ports = ",".join(str(port) for port in free_ports(2))
    logs = [(tmp_path / f"worker-{index}.log").open("w") for index in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKERS / "multiworker_check.py"), str(index), ports, str(tmp_path)],
            env={**ENVIRONMENT, "CUDA_VISIBLE_DEVICES": "-1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for index, log in enumerate(logs)
    ]
    try:
        history = History()  # the reference, on one device, while the workers start
        reference, reference_masks = maco(
            Neuron(model, "logits", [0, 1, 2, 3]), callbacks=[history], **MULTIWORKER
        )
        wait_all(workers, timeout=300)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
        for log in logs:
            log.close()
    for index, worker in enumerate(workers):
        assert worker.returncode == 0, (tmp_path / f"worker-{index}.log").read_text()[-3000:]
    results = [np.load(tmp_path / f"worker-{index}.npz") for index in range(2)]
    for result in results:
        assert result["replicas"] == 2
        assert result["images"].shape == (4, 40, 40, 3)
        assert np.abs(result["images"] - reference.numpy()).max() < 1e-4
        masks = reference_masks.numpy()
        assert np.abs(result["transparencies"] - masks).max() / masks.max() < 1e-3
        np.testing.assert_allclose(result["history"], history.values, rtol=1e-4, atol=1e-4)
        assert result["retraces"] == 0
    assert np.array_equal(results[0]["images"], results[1]["images"])
