"""Several devices through tf.distribute: the same seed gives the same images as one device."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus_matches_one_device():
    here = Path(__file__).parent
    environment = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": os.pathsep.join([str(here), str(here.parent)]),
    }
    run = subprocess.run(
        [sys.executable, str(here / "distributed_check.py")],
        env=environment,
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
