"""``discern bench nureality`` prints the {"bench", "ratios", "goals", "details"} convention: the ratios are
the measured numbers divided as documented (the measurements are replaced by fixed ones here)."""

from discern.nureality import bench
from discern.reproduce.registry import check_bench


def _server(eps, p99, errors=0):
    return {"events_per_second": eps, "latency_ms": {"p50": 1.0, "p99": p99, "max": 2 * p99}, "errors": errors,
            "requests": 400}


def test_bench_json_convention_and_ratios(monkeypatch):
    calls = []

    def fake(n, m, wal):
        calls.append((n, m, wal))
        if n == 16:
            return _server(600.0, 40.0) if wal else _server(400.0, 80.0)
        return _server(900.0, 500.0, errors=0) if wal else _server(300.0, 2000.0, errors=4)

    monkeypatch.setattr(bench, "server_throughput", fake)
    monkeypatch.setattr(bench, "frame_time", lambda seconds, query: {"fps": 4.0 if query else 2.5})
    out = bench.bench(quick=True)
    check_bench(out, "nureality")
    assert calls == [(16, 160, False), (16, 160, True), (200, 40, False), (200, 40, True)]
    assert out["ratios"] == {"events_per_s_vs_sqlite_defaults_at_16": 1.5, "p99_sqlite_defaults_over_ours_at_16": 2.0,
                             "events_per_s_vs_sqlite_defaults_at_200": 3.0, "p99_sqlite_defaults_over_ours_at_200": 4.0,
                             "p99_goal_50ms_over_p99_at_16": 1.25, "answered_share_at_200": 1.0,
                             "scene_light_fps_vs_full": 1.6}
    assert out["goals"] == {"p99_goal_50ms_over_p99_at_16": ">= 1", "answered_share_at_200": ">= 1"}
    assert out["details"]["server_16"]["events_per_second"] == 600.0
    assert out["details"]["server_baseline_200"]["errors"] == 4

    def no_browser(seconds, query):
        raise FileNotFoundError("/usr/bin/chromium\nmore")

    monkeypatch.setattr(bench, "frame_time", no_browser)
    out = bench.bench(quick=True)
    check_bench(out, "nureality")
    assert "scene_light_fps_vs_full" not in out["ratios"] and len(out["ratios"]) == 6
    assert out["details"]["scene_full"] == {"error": "FileNotFoundError: /usr/bin/chromium"}


def test_server_throughput_runs_a_real_server_process():
    for wal in (True, False):
        out = bench.server_throughput(3, 10, batch=4, wal=wal)
        assert (out["participants"], out["events"], out["requests"], out["errors"]) == (3, 30, 9, 0), out
        assert out["error_examples"] == [] and 0 < out["latency_ms"]["p50"] <= out["latency_ms"]["p99"]
        assert out["sqlite"] == ("WAL, synchronous=FULL" if wal else
                                 "rollback journal, synchronous=FULL (SQLite's defaults)")
