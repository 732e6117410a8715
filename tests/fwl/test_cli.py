import json

from discern.cli import main


def test_train_then_evaluate_with_and_without_dynamic_evaluation(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    text = tmp_path / "train.txt"
    text.write_text("the cat sat on the mat . " * 40, encoding="utf-8")
    assert main(["fwl", "train", "--preset", "tiny", "--text", str(text), "--set", "steps=3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 3
    model = out["model"]
    args = ["fwl", "evaluate", "--model", model, "--text", str(text), "--seq-len", "16", "--max-tokens", "64"]
    assert main(args) == 0
    static = json.loads(capsys.readouterr().out)
    assert main(args + ["--dynamic", "--lr", "0.05"]) == 0
    dyn = json.loads(capsys.readouterr().out)
    assert static["fwl"] and static["tokens"] == dyn["tokens"] == 64
    # a repeated sentence: adapting on earlier segments must help the later ones
    assert dyn["ppl"] < static["ppl"]


def test_bad_text_fails_clearly(tmp_path, capsys):
    assert main(["fwl", "evaluate", "--model", "smollm2", "--text", str(tmp_path / "missing.txt")]) != 0
    assert "not 'wikitext', 'moby-dick' or a file" in capsys.readouterr().err


def test_train_the_control_keeps_its_step_sizes_at_zero(tmp_path, monkeypatch, capsys):
    import torch

    from discern.fwl.model import FWLCausalLM

    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    text = tmp_path / "train.txt"
    text.write_text("the cat sat on the mat . " * 40, encoding="utf-8")
    assert main(["fwl", "train", "--preset", "tiny", "--text", str(text), "--set", "steps=2", "--control"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["variant"] == "control" and out["steps"] == 2
    model = FWLCausalLM.from_pretrained(out["model"])
    assert not model.fast_weights
    assert all(torch.equal(p, torch.zeros(())) for p in model.block.steps.values())
    assert main(["fwl", "evaluate", "--model", out["model"], "--text", str(text), "--seq-len", "16",
                 "--max-tokens", "32"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["fwl"] is True and ev["fast_weights"] is False and ev["tokens"] == 32


def test_evaluate_reads_the_saved_folder_and_the_earlier_layout(tmp_path, monkeypatch, capsys):
    """``fwl evaluate`` gives the same perplexity for a trained model's folder and for the same model saved
    in the earlier layout (base/ with the tokenizer, fwl.pt, fwl.json)."""
    import torch

    from discern.fwl.model import FWLCausalLM

    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    text = tmp_path / "train.txt"
    text.write_text("the cat sat on the mat . " * 40, encoding="utf-8")
    assert main(["fwl", "train", "--preset", "tiny", "--text", str(text), "--set", "steps=1"]) == 0
    folder = json.loads(capsys.readouterr().out)["model"]
    model = FWLCausalLM.from_pretrained(folder)
    old = tmp_path / "old"
    model.base.save_pretrained(old / "base")
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(folder).save_pretrained(old / "base")
    torch.save({k: v for k, v in model.block.state_dict().items() if not k.startswith("unembed.")}, old / "fwl.pt")
    (old / "fwl.json").write_text(json.dumps({"size": model.size, "attn_chunks": model.block.attn_chunks,
                                              "residual": model.block.residual, "fast_weights": True}))
    ppl = []
    for m in (folder, str(old)):
        assert main(["fwl", "evaluate", "--model", m, "--text", str(text), "--seq-len", "16", "--max-tokens", "32"]) == 0
        res = json.loads(capsys.readouterr().out)
        assert res["fwl"] is True and res["tokens"] == 32
        ppl.append(res["ppl"])
    assert ppl[0] == ppl[1]
