import json
from dataclasses import dataclass, field

import pytest

from discern.core import ConfigError, apply_overrides, build_config, config_to_dict


@dataclass
class Inner:
    steps: int = 10
    lr: float = 1e-3
    bf16: bool = False
    tasks: list[str] = field(default_factory=lambda: ["a", "b"])
    name: str = "x"


@dataclass
class Outer:
    train: Inner = field(default_factory=Inner)
    seed: int = 0


PRESETS = {"tiny": Outer, "big": lambda: Outer(train=Inner(steps=1000))}


def test_overrides_are_typed():
    cfg = build_config(PRESETS, "tiny", sets=["train.steps=20", "train.lr=3e-4", "train.bf16=true",
                                              "train.tasks=x,y,z", "seed=7", "train.name=abc"])
    assert cfg.train.steps == 20 and cfg.train.lr == 3e-4 and cfg.train.bf16 is True
    assert cfg.train.tasks == ["x", "y", "z"] and cfg.seed == 7 and cfg.train.name == "abc"


def test_unknown_key_names_the_key():
    with pytest.raises(ConfigError, match=r"unknown config key 'train\.stepz' in section 'train'"):
        build_config(PRESETS, "tiny", sets=["train.stepz=3"])
    with pytest.raises(ConfigError, match=r"unknown config key 'trian\.steps'"):
        build_config(PRESETS, "tiny", sets=["trian.steps=3"])


def test_mistyped_value_names_the_key():
    with pytest.raises(ConfigError, match=r"config key 'train\.steps' expects an int, got 'ten'"):
        build_config(PRESETS, "tiny", sets=["train.steps=ten"])
    with pytest.raises(ConfigError, match=r"'train\.bf16' expects a bool"):
        build_config(PRESETS, "tiny", sets=["train.bf16=maybe"])
    with pytest.raises(ConfigError, match="expects KEY=VALUE"):
        build_config(PRESETS, "tiny", sets=["train.steps"])


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'huge' \\(choose from: tiny, big\\)"):
        build_config(PRESETS, "huge")


def test_config_file_then_sets(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"train": {"steps": 55, "lr": 0.5}, "seed": 3}))
    cfg = build_config(PRESETS, "big", config_file=f, sets=["train.lr=0.25"])
    assert (cfg.train.steps, cfg.train.lr, cfg.seed) == (55, 0.25, 3)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train": {"stepss": 1}}))
    with pytest.raises(ConfigError, match=r"unknown config key 'train\.stepss'"):
        build_config(PRESETS, "big", config_file=bad)
    broken = tmp_path / "broken.json"
    broken.write_text('{"train": \n {')
    with pytest.raises(ConfigError, match=r"broken.json: invalid JSON at line 2"):
        build_config(PRESETS, "big", config_file=broken)


def test_round_trip_through_dict():
    cfg = build_config(PRESETS, "big", sets=["train.tasks=q"])
    again = apply_overrides(Outer(), {"train.steps": config_to_dict(cfg)["train"]["steps"],
                                      "train.tasks": config_to_dict(cfg)["train"]["tasks"]})
    assert again == cfg


@dataclass
class Ranged:
    train: Inner = field(default_factory=Inner)
    weights: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])


@pytest.mark.parametrize("spec, value, ok", [
    ("[1, inf)", 1, True), ("[1, inf)", 0, False), ("(1, inf)", 1, False), ("(1, inf)", 1.0001, True),
    ("[0, 1)", 0.999, True), ("[0, 1)", 1.0, False), ("[0, 1]", 1.0, True), ("(0, 1]", 0.0, False),
    ("[0, inf)", float("inf"), False), ("[0, inf]", float("inf"), True), ("[0, inf)", float("nan"), False),
    ("(-inf, inf)", float("-inf"), False), ("[0, inf)", 10 ** 400, True), ("(-inf, 0]", -(10 ** 400), True),
])
def test_check_ranges_reads_open_and_closed_bounds(spec, value, ok):
    from discern.core.config import check_ranges

    cfg = Ranged(train=Inner(lr=value))
    if ok:
        check_ranges(cfg, {"train.lr": spec})
    else:
        with pytest.raises(ConfigError) as e:
            check_ranges(cfg, {"train.lr": spec}, prefix="run.")
        assert str(e.value).startswith(f"config key 'run.train.lr' must be in {spec}, got ")


def test_check_ranges_checks_each_item_of_a_list_and_choices_name_the_allowed_values():
    from discern.core.config import check_choices, check_ranges

    cfg = Ranged()
    check_ranges(cfg, {"weights": "[0, 1]"})
    cfg.weights = [0.5, 1.5, -1.0]
    with pytest.raises(ConfigError, match=r"^config key 'weights' must be in \[0, 1\], got 1\.5$"):
        check_ranges(cfg, {"weights": "[0, 1]"})
    check_choices(cfg, {"train.name": ("x", "y")})
    cfg.train.name = "<b>" + "z" * 10_000
    with pytest.raises(ConfigError) as e:
        check_choices(cfg, {"train.name": ("x", "y")})
    assert str(e.value).startswith("config key 'train.name' must be one of x, y, got '<b>zzz") and len(str(e.value)) < 120
