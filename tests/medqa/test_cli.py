"""``discern medqa evaluate`` against an OpenAI-compatible server on 127.0.0.1; a rerun is all cache."""

import json

from discern.cli import main


class _AlwaysC:
    name = "always-c"

    def __init__(self):
        self.prompts = 0

    def generate(self, prompts, n, params):
        self.prompts += len(prompts)
        return [["Reasoning. Answer: (C)"] * n for _ in prompts]


def test_evaluate_over_a_server_then_from_the_cache(serve, tmp_path, capsys):
    be = _AlwaysC()
    url = serve(be)
    args = ["medqa", "evaluate", "--backend", url, "--model", "always-c", "--datasets", "mmlu:anatomy",
            "--strategies", "cot,self_consistency,ensemble_refinement", "--limit", "4", "--k", "3", "--k1", "2",
            "--k2", "3", "--out", str(tmp_path / "out")]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    # 4 questions: CoT 4 prompts, SC 4 (same prompt, other n), ER 4 stage-1 + 4 stage-2
    assert first["backend_calls"] == 16 and be.prompts == 16
    res = json.loads((tmp_path / "out" / "results.json").read_text())["results"]["mmlu:anatomy"]
    assert set(res) == {"cot", "self_consistency", "ensemble_refinement"}
    assert res["cot"]["acc"] == res["self_consistency"]["acc"] == res["ensemble_refinement"]["acc"]
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["backend_calls"] == 0 and be.prompts == 16 and second["results"] == first["results"]
    assert main(args[:7] + ["pubmed"] + args[8:]) == 2
    assert "unknown dataset" in capsys.readouterr().err
