"""``discern bench nureality`` prints the {"bench", "ratios", "goals", "details"} convention: the ratios are
the measured numbers divided as documented (the measurements are replaced by fixed ones here)."""

from discern.nureality import bench
from discern.reproduce.registry import check_bench


def _server(eps, p99):
    return {"events_per_second": eps, "latency_ms": {"p50": 1.0, "p99": p99, "max": 2 * p99}}


def test_bench_json_convention_and_ratios(monkeypatch):
    monkeypatch.setattr(bench, "server_throughput", lambda n, m, wal: _server(600.0, 150.0) if wal
                        else _server(400.0, 300.0))
    monkeypatch.setattr(bench, "frame_time", lambda seconds, query: {"fps": 4.0 if query else 2.5})
    out = bench.bench(quick=True)
    check_bench(out, "nureality")
    assert out["ratios"] == {"server_events_per_s_vs_sqlite_defaults": 1.5,
                             "server_p99_latency_sqlite_defaults_over_wal": 2.0, "scene_light_fps_vs_full": 1.6}
    assert out["details"]["server"]["events_per_second"] == 600.0

    def no_browser(seconds, query):
        raise FileNotFoundError("/usr/bin/chromium\nmore")

    monkeypatch.setattr(bench, "frame_time", no_browser)
    out = bench.bench(quick=True)
    check_bench(out, "nureality")
    assert set(out["ratios"]) == {"server_events_per_s_vs_sqlite_defaults", "server_p99_latency_sqlite_defaults_over_wal"}
    assert out["details"]["scene_full"] == {"error": "FileNotFoundError: /usr/bin/chromium"}
