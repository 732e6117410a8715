"""Every paper's configuration refuses a value no run can use with one line, before any work: the
training commands and ``discern reproduce`` alike (ELECTRA's and Electric's cases are in
test_reproduce.py)."""

from __future__ import annotations

import importlib

import pytest

from discern.reproduce import registry

CASES = [
    ("fwl train --preset tiny --set steps=0", "config key 'steps' must be in [1, inf), got 0"),
    ("fwl train --preset tiny --set dynamic_lrs=[]", "config key 'dynamic_lrs' must name at least one learning rate"),
    ("fwl train --preset tiny --set dev_fraction=0.4",
     "config keys 'train_fraction' + 'dev_fraction' must be below 1 (the rest is the test text), got 0.6 + 0.4"),
    ("fwl train --preset tiny --set scratch.heads=3", "config key 'scratch.heads' must divide scratch.hidden=32, got 3"),
    ("reproduce --only fwl --preset tiny --set lr=nan", "config key 'lr' must be in [0, inf), got nan"),
    ("bam teachers --preset tiny --set student.dropout=1", "config key 'student.dropout' must be in [0, 1), got 1.0"),
    ("bam teachers --preset tiny --set teacher.max_length=4096",
     "config key 'teacher.max_length' must be in [8, 512], got 4096"),
    ("bam teachers --preset tiny --set tasks=[]", "config key 'tasks' must name at least one task"),
    ("bam teachers --preset tiny --set student.head_input=<i>x</i>",
     "config key 'student.head_input' must be one of pooled, cls, got '<i>x</i>'"),
    ("diffusion train --preset tiny --set train.caption_dropout=2",
     "config key 'train.caption_dropout' must be in [0, 1], got 2.0"),
    ("diffusion train --preset tiny --set model.image_size=15",
     "config key 'model.image_size' must be divisible by 2 (the UNet halves it once), got 15"),
    ("diffusion train --preset tiny --set model.beta_schedule=cosine",
     "config key 'model.beta_schedule' must be one of linear, scaled_linear, squaredcos_cap_v2, got 'cosine'"),
    ("diffusion train --preset tiny --set train.steps=-1", "config key 'train.steps' must be in [1, inf), got -1"),
    ("diffusion train --preset tiny --set model.text_heads=3",
     "config key 'model.text_heads' must divide model.cross_attention_dim=16, got 3"),
    ("diffusion train --preset tiny --set model.block_out_channels=[8,12]",
     "config key 'model.block_out_channels' must be multiples of 8 (GroupNorm groups) and of "
     "model.attention_head_dim=4, got [8, 12]"),
    ("reproduce --only draft --preset tiny --set draft.method=ppo",
     "config key 'draft.method' must be one of full, k, lv, refl, ddpo, got 'ppo'"),
    ("reproduce --only draft --preset tiny --set draft.sampler.eta=1.5",
     "config key 'draft.sampler.eta' must be in [0, 1], got 1.5"),
    ('reproduce --only draft --preset tiny --set methods=["k","sgd"]',
     "config key 'methods' must be among full, k, lv, refl, ddpo, got 'sgd'"),
    ("reproduce --only draft --preset tiny --set draft.ddpo_min_count=100",
     "config key 'draft.ddpo_min_count' must be in [1, 32], got 100"),
    ("reproduce --only diffusion-classifier --preset tiny --set li_keep=[1]",
     "config keys 'li_samples' and 'li_keep' must be lists of one length (a stage each), got 2 and 1"),
    ("reproduce --only diffusion-classifier --preset tiny --set alpha=1", "config key 'alpha' must be in (0, 1), got 1.0"),
    ("reproduce --only diffusion-classifier --preset tiny --set round_size=100",
     "config key 'round_size' must be in [1, 8], got 100"),
    ("reproduce --only psychophysics --preset tiny --set size=20",
     "config keys 'size' and 'model.image_size' must be equal (the stimuli are drawn at the model's size), got 20 and 16"),
    ("reproduce --only psychophysics --preset tiny --set template=a_photo",
     "config key 'template' must hold one '{}' for the class name, got 'a_photo'"),
    ("reproduce --only psychophysics --preset tiny --set noise_max_t=5000",
     "config key 'noise_max_t' must be in [1, 1000], got 5000"),
    ("reproduce --only psychophysics --preset tiny --set texture_match=1.5",
     "config key 'texture_match' must be in [0, 1], got 1.5"),
    ("reproduce --only medqa --preset tiny --set k=0", "config key 'k' must be in [1, inf), got 0"),
    ('reproduce --only medqa --preset tiny --set strategies=["cot","magic"]',
     "config key 'strategies' must be among few_shot, cot, self_consistency, ensemble_refinement, got 'magic'"),
    ("reproduce --only medqa --preset tiny --set dtype=int8",
     "config key 'dtype' must be one of bfloat16, float32, float16, got 'int8'"),
    ("reproduce --only medqa --preset tiny --set pubmedqa=-1", "config key 'pubmedqa' must be in [0, inf), got -1"),
    ("reproduce --only nureality --preset tiny --set participants=0",
     "config key 'participants' must be in [1, 10000], got 0"),
    ("reproduce --only nureality --preset tiny --set order=zigzag",
     "config key 'order' must be one of latin, random, got 'zigzag'"),
    ("reproduce --only nureality --preset tiny --set alpha=0", "config key 'alpha' must be in (0, 1), got 0.0"),
    ("reproduce --only attention --preset tiny --set level=1.5", "config key 'level' must be in (0, 1), got 1.5"),
    ("reproduce --only attention --preset tiny --set n_boot=0", "config key 'n_boot' must be in [1, inf), got 0"),
]


@pytest.mark.parametrize("command, message", CASES, ids=[c for c, _ in CASES])
def test_an_out_of_range_value_is_one_line_before_any_work(command, message, tmp_path, monkeypatch, capsys):
    from discern.cli import main

    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DISCERN_QUIET", "1")
    words = command.split(" --set ")
    argv = words[0].split() + ["--set", words[1]]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "runs").exists()


def _preset_tables():
    out = []
    for paper in registry.papers():
        module = importlib.import_module(f"discern.{paper.name}.config")
        for table in ("PRESETS", "TRAIN_PRESETS"):
            if hasattr(module, table):
                out.append(pytest.param(module, table, id=f"{paper.name}.{table}"))
    return out


@pytest.mark.parametrize("module, table", _preset_tables())
def test_every_preset_passes_its_own_checks(module, table):
    from discern.core import build_config

    presets = getattr(module, table)
    assert presets
    for name in presets:
        build_config(presets, name)


def test_every_diffusion_train_preset_passes_its_checks():
    from discern.core import build_config
    from discern.train.cli import _presets

    presets = _presets()
    assert set(presets) >= {"tiny", "quick"}
    for name in presets:
        build_config(presets, name)
