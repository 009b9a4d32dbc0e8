"""``redes bench``: the timings come from genuine training, and timing leaves training unchanged."""

import numpy as np

from engine.commands import bench


def test_timed_optimizer_times_real_steps_without_changing_training():
    timed, plain = (bench.make_run("mlp", 10, n=200, optimizer="adam") for _ in range(2))
    optimizer = timed.optimizer
    timed.optimizer = clock = bench._TimedOptimizer(optimizer, timed.dev.synchronize)
    bench._epoch(timed)
    bench._epoch(plain)
    assert clock.seconds > 0 and clock.iterations == optimizer.iterations  # a stand-in, not a copy
    np.testing.assert_array_equal(timed.network.flat_params, plain.network.flat_params)
    assert optimizer.iterations == plain.optimizer.iterations == 20


def test_run_bench_reports_the_update_share_of_each_timed_epoch():
    import time

    t0 = time.perf_counter()
    result = bench.run_bench("mlp", batch=10, reps=2, n=200, cold=False, warmup=5,
                             optimizer="adam")
    wall = time.perf_counter() - t0
    assert result["optimizer"] == "adam" and len(result["update_shares"]) == 2
    assert all(0 < share < 1 for share in result["update_shares"])
    assert result["update_share"] == np.median(result["update_shares"])
    # the timed epochs happened inside this call: together they took less than all of it, so
    # the reported rate is at least what the whole call's wall time allows
    assert 0 < sum(result["epoch_seconds"]) < wall
    assert result["samples_per_sec"] >= 200 / wall
