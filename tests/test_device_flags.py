"""``--device`` and ``--dtype``: on exactly the commands that run a model, with one meaning.

- every such command has both flags, default ``auto``, and no other command has them;
- ``--device cuda`` without a GPU, ``--dtype float16`` on the CPU: one line, exit 2, before a model loads;
- inference commands load the model in the ``--dtype`` asked for (tiny models, as the packages' tests build them);
- training commands record ``--dtype`` as the run's autocast setting in ``config.json``, train under it, and a
  ``--resume`` keeps it.
"""

import argparse
import contextlib
import io
import json

import numpy as np
import pytest
import torch

from discern.cli import build_parser, main
from discern.core import device as device_module

# every command that runs a model (inference, training, the server)
MODEL_COMMANDS = {
    # inference
    "attention analyze", "bam evaluate", "diffusion-classifier classify", "draft sample", "electric score",
    "electric rerank", "fwl evaluate", "medqa eval", "medqa answer", "psychophysics evaluate-model",
    "tasks finetune", "llm serve",
    # training
    "electra pretrain", "electric pretrain", "bam teachers", "bam distill", "fwl train", "draft train",
    "diffusion train",
}

_CHOSEN_BEFORE = list(device_module._CHOSEN)


@pytest.fixture(autouse=True)
def _forget_the_chosen_device():
    """A command's --device is the process-wide choice: the tests after these start with the one before."""
    yield
    device_module._CHOSEN[:] = _CHOSEN_BEFORE


no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the errors of a machine without a GPU")


def _commands(parser, path=()):
    """(command path, parser) of every leaf command; an alias (medqa evaluate) is its first name's parser."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
        return
    seen = set()
    for name, sp in subs[0].choices.items():
        if id(sp) not in seen:
            seen.add(id(sp))
            yield from _commands(sp, path + (name,))


def test_exactly_the_commands_that_run_a_model_have_both_flags():
    found = {}
    for name, p in _commands(build_parser()):
        opts = {o: a for a in p._actions for o in a.option_strings}
        if "--device" in opts or "--dtype" in opts:
            found[name] = (opts.get("--device"), opts.get("--dtype"))
    assert set(found) == MODEL_COMMANDS
    for name, (device, dtype) in found.items():
        assert device is not None and dtype is not None, name
        assert device.default == "auto" and dtype.default == "auto", name
        assert list(dtype.choices) == ["auto", "float32", "bfloat16", "float16"], name
        assert "auto = " in dtype.help and len(dtype.help) > len("model precision; auto = ") + 5, name


def _one_line_error(capsys, argv, code=2):
    capsys.readouterr()
    assert main(argv) == code
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _never(*args, **kwargs):
    raise AssertionError("a model was loaded or a run was started despite a bad --device / --dtype")


@pytest.fixture
def no_loading(monkeypatch, tmp_path):
    """Every loader and trainer of the commands below fails the test if reached."""
    import discern.core.runs
    import discern.electra.pretrain
    import discern.fwl.cli
    import discern.medqa.backend
    import discern.psychophysics.model_eval
    import discern.tasks
    import discern.tasks.finetune

    # discern.tasks binds its lazy names on first use: bind them now, to the real functions, so that the
    # patch below stays in this test
    assert discern.tasks.finetune_from_pretrained is discern.tasks.finetune.finetune_from_pretrained
    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(discern.fwl.cli, "load_any", _never)
    monkeypatch.setattr(discern.psychophysics.model_eval, "evaluate_model", _never)
    monkeypatch.setattr(discern.medqa.backend, "make_backend", _never)
    monkeypatch.setattr(discern.tasks.finetune, "finetune_from_pretrained", _never)
    monkeypatch.setattr(discern.electra.pretrain, "pretrain", _never)
    monkeypatch.setattr(discern.core.runs.Run, "create", _never)
    questions = tmp_path / "q.txt"
    questions.write_text("What is a fever?\n")
    return tmp_path


def _argv(kind, tmp):
    return {
        "fwl evaluate": ["fwl", "evaluate", "--model", "smollm2", "--text", "wikitext"],
        "psychophysics evaluate-model": ["psychophysics", "evaluate-model", "--model", "efficientnet-lite0",
                                         "--out", str(tmp / "o")],
        "medqa answer": ["medqa", "answer", "--model", "smollm2", "--questions", str(tmp / "q.txt"),
                         "--out", str(tmp / "a.jsonl")],
        "tasks finetune": ["tasks", "finetune", "--model", str(tmp), "--task", "spam"],
        "electra pretrain": ["electra", "pretrain", "--preset", "tiny"],
        "diffusion train": ["diffusion", "train", "--preset", "tiny"],
        "fwl train": ["fwl", "train", "--preset", "tiny"],
    }[kind]


@no_cuda
@pytest.mark.parametrize("kind", ["fwl evaluate", "psychophysics evaluate-model", "medqa answer", "tasks finetune",
                                  "electra pretrain", "diffusion train", "fwl train"])
def test_device_cuda_without_a_gpu_is_one_line_before_anything_loads(kind, no_loading, capsys):
    err = _one_line_error(capsys, _argv(kind, no_loading) + ["--device", "cuda"])
    assert err.startswith("error: --device cuda: no CUDA device is available"), err
    assert not (no_loading / "runs").exists()


@no_cuda
def test_other_bad_devices_are_one_line(no_loading, capsys):
    assert "--device cuda:1: no CUDA device" in _one_line_error(capsys, _argv("fwl evaluate", no_loading)
                                                               + ["--device", "cuda:1"])
    assert "choose auto, cpu, cuda or cuda:N" in _one_line_error(capsys, _argv("electra pretrain", no_loading)
                                                                 + ["--device", "tpu"])


@pytest.mark.parametrize("kind", ["fwl evaluate", "psychophysics evaluate-model", "medqa answer", "electra pretrain",
                                  "diffusion train"])
def test_float16_on_the_cpu_is_one_line(kind, no_loading, capsys):
    err = _one_line_error(capsys, _argv(kind, no_loading) + ["--dtype", "float16", "--device", "cpu"])
    assert err == "error: --dtype float16 needs a GPU (use bfloat16 or float32 on the CPU)"


def test_dtype_and_a_set_of_the_same_key_conflict(no_loading, capsys):
    err = _one_line_error(capsys, ["electra", "pretrain", "--preset", "tiny", "--dtype", "bfloat16",
                                   "--set", "train.bf16=false"])
    assert "--dtype bfloat16 and --set train.bf16" in err


# --------------------------------------------------------------------------------------------- medqa


def test_medqa_loads_in_process_in_bfloat16_by_default_and_a_url_ignores_both(no_loading, monkeypatch, capsys):
    import discern.medqa.backend
    from discern.core import DiscernError

    seen = []

    def record(spec, model=None, chat=False, dtype="bfloat16", api_key=None, concurrency=4, device=None):
        seen.append((spec, dtype, device))
        raise DiscernError("stop here")

    monkeypatch.setattr(discern.medqa.backend, "make_backend", record)
    base = _argv("medqa answer", no_loading)
    assert _one_line_error(capsys, base + ["--device", "cpu"]) == "error: stop here"
    assert _one_line_error(capsys, base + ["--device", "cpu", "--dtype", "float32"]) == "error: stop here"
    url = ["medqa", "answer", "--model", "http://127.0.0.1:9/v1", "--questions", str(no_loading / "q.txt"),
           "--out", str(no_loading / "a.jsonl")]
    assert _one_line_error(capsys, url + ["--device", "cuda:7", "--dtype", "float16"]) == "error: stop here"
    assert seen == [("smollm2", "bfloat16", torch.device("cpu")), ("smollm2", "float32", torch.device("cpu")),
                    ("http://127.0.0.1:9/v1", "bfloat16", None)]


# ------------------------------------------------------------------------------------ tiny diffusion model


def _quiet(argv):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return json.loads(buf.getvalue())


@pytest.fixture(scope="module")
def diffusion_run(tmp_path_factory, random_image_folder):
    """``diffusion train --preset tiny --dtype bfloat16`` on six random images; records whether the UNet ran
    under bf16 autocast during training."""
    from discern.diffusion.denoise import Denoiser

    root = tmp_path_factory.mktemp("diffusion")
    folder = random_image_folder(root / "images")
    autocast = []
    original = Denoiser.predict_eps

    def predict_eps(self, x_t, t, cond):
        autocast.append(torch.is_autocast_enabled("cpu"))
        return original(self, x_t, t, cond)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISCERN_RUNS", str(root / "runs"))
        mp.setenv("DISCERN_QUIET", "1")
        mp.setattr(Denoiser, "predict_eps", predict_eps)
        out = _quiet(["diffusion", "train", "--preset", "tiny", "--images", str(folder), "--device", "cpu",
                      "--dtype", "bfloat16"])
    (root / "classes.txt").write_text("circle\nsquare\n")
    return {"out": out, "folder": folder, "root": root, "autocast": autocast}


def test_diffusion_train_records_bfloat16_autocast(diffusion_run):
    from pathlib import Path

    run = Path(diffusion_run["out"]["run"])
    assert json.loads((run / "config.json").read_text())["train"]["bf16"] is True
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=False)["train_config"]["bf16"] is True
    assert diffusion_run["autocast"] and all(diffusion_run["autocast"])


@pytest.fixture
def unet_dtypes(monkeypatch):
    """The UNet parameter dtype at each denoiser call (diffusion-classifier classify, draft sample)."""
    from discern.diffusion.denoise import Denoiser

    seen = []
    original = Denoiser.predict_eps

    def predict_eps(self, x_t, t, cond):
        seen.append(next(self.unet.parameters()).dtype)
        out = original(self, x_t, t, cond)
        assert out.dtype == torch.float32  # the arithmetic around the network stays in float32
        return out

    monkeypatch.setattr(Denoiser, "predict_eps", predict_eps)
    return seen


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_diffusion_classifier_classify_runs_the_pipeline_in_the_dtype(dtype, diffusion_run, unet_dtypes, tmp_path):
    r = diffusion_run
    summary = _quiet(["diffusion-classifier", "classify", "--model", r["out"]["pipeline"], "--images", str(r["folder"]),
                      "--classes", str(r["root"] / "classes.txt"), "--policy", "full", "--samples", "2",
                      "--out", str(tmp_path / "pred"), "--device", "cpu", "--dtype", dtype])
    assert summary["images"] == 6
    assert unet_dtypes and set(unet_dtypes) == {getattr(torch, dtype)}


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_draft_sample_runs_the_pipeline_in_the_dtype(dtype, diffusion_run, unet_dtypes, tmp_path):
    from PIL import Image

    out = tmp_path / "grid.png"
    _quiet(["draft", "sample", "--model", diffusion_run["out"]["pipeline"], "--steps", "2", "--out", str(out),
            "--device", "cpu", "--dtype", dtype])
    assert Image.open(out).size == (28, 28)
    assert unet_dtypes and set(unet_dtypes) == {getattr(torch, dtype)}


# ------------------------------------------------------------------------------------------- tiny FWL


@pytest.fixture(scope="module")
def fwl_run(tmp_path_factory):
    """``fwl train --preset tiny --dtype float32`` for two steps; records the autocast state of each step."""
    from discern.fwl.model import FWLCausalLM

    root = tmp_path_factory.mktemp("fwl")
    text = root / "train.txt"
    text.write_text("the cat sat on the mat . " * 40, encoding="utf-8")
    autocast = []
    original = FWLCausalLM.loss

    def loss(self, *args, **kwargs):
        autocast.append(torch.is_autocast_enabled("cpu"))
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISCERN_RUNS", str(root / "runs"))
        mp.setenv("DISCERN_QUIET", "1")
        mp.setattr(FWLCausalLM, "loss", loss)
        out = _quiet(["fwl", "train", "--preset", "tiny", "--text", str(text), "--set", "steps=2",
                      "--dtype", "float32", "--device", "cpu"])
    return {"out": out, "text": text, "root": root, "autocast": autocast}


def test_fwl_train_records_float32_and_a_resume_keeps_it(fwl_run, monkeypatch, capsys):
    from pathlib import Path

    run = Path(fwl_run["out"]["run"])
    assert json.loads((run / "config.json").read_text())["bf16"] is False
    assert fwl_run["autocast"] == [False, False]
    monkeypatch.setenv("DISCERN_RUNS", str(fwl_run["root"] / "runs"))
    err = _one_line_error(capsys, ["fwl", "train", "--resume", str(run), "--dtype", "bfloat16"])
    assert err == ("error: --dtype bfloat16: the resumed run was started with bf16=false (float32); drop --dtype or "
                   "give --dtype float32")
    assert main(["fwl", "train", "--resume", str(run), "--dtype", "float32"]) == 0  # agrees: continues
    assert json.loads(capsys.readouterr().out)["steps"] == 2


def test_fwl_train_bfloat16_trains_under_autocast(tmp_path, monkeypatch, fwl_run):
    from discern.fwl.model import FWLCausalLM

    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DISCERN_QUIET", "1")
    autocast = []
    original = FWLCausalLM.loss

    def loss(self, *args, **kwargs):
        autocast.append(torch.is_autocast_enabled("cpu"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(FWLCausalLM, "loss", loss)
    out = _quiet(["fwl", "train", "--preset", "tiny", "--text", str(fwl_run["text"]), "--set", "steps=1",
                  "--dtype", "bfloat16", "--device", "cpu"])
    from pathlib import Path

    assert json.loads((Path(out["run"]) / "config.json").read_text())["bf16"] is True
    assert autocast == [True]


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_fwl_evaluate_runs_the_model_in_the_dtype(dtype, fwl_run, monkeypatch):
    import discern.fwl.dynamic

    seen = []
    original = discern.fwl.dynamic.segment_nll

    def segment_nll(model, ids):
        seen.append(next(model.parameters()).dtype)
        return original(model, ids)

    monkeypatch.setattr(discern.fwl.dynamic, "segment_nll", segment_nll)
    res = _quiet(["fwl", "evaluate", "--model", fwl_run["out"]["model"], "--text", str(fwl_run["text"]),
                  "--seq-len", "16", "--max-tokens", "32", "--device", "cpu", "--dtype", dtype])
    assert res["tokens"] == 32 and np.isfinite(res["ppl"])
    assert seen and set(seen) == {getattr(torch, dtype)}


# ------------------------------------------------------------------------------ tiny image classifier


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_psychophysics_evaluate_model_runs_the_classifier_in_the_dtype(dtype, tmp_path, monkeypatch):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    from discern.psychophysics.imagenet_models import TorchImageNetClassifier

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "tiny_vit"
    torch.manual_seed(0)
    cfg = ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=32,
                    patch_size=16, num_labels=1000)
    ViTForImageClassification(cfg).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    seen = []
    original = TorchImageNetClassifier.probabilities

    def probabilities(self, images):
        seen.append(next(self.module.parameters()).dtype)
        p = original(self, images)
        assert p.dtype == np.float64 and np.allclose(p.sum(1), 1.0, atol=1e-2)
        return p

    monkeypatch.setattr(TorchImageNetClassifier, "probabilities", probabilities)
    summary = _quiet(["psychophysics", "evaluate-model", "--model", str(folder), "--dataset", "edge", "--limit", "2",
                      "--out", str(tmp_path / "o"), "--json", "--device", "cpu", "--dtype", dtype])
    assert summary["edge"]["images"] == 2
    assert seen and set(seen) == {getattr(torch, dtype)}
