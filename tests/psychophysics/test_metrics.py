"""The model-vs-human metrics, on the shipped human data and on constructed edge cases."""

import json

import numpy as np
import pandas as pd
import pytest

from discern.data import registry
from discern.psychophysics import metrics as M
from discern.psychophysics.decisions import decision_path, write_decisions
from discern.psychophysics.imagenet16 import IMAGENET_INDICES, decide_16, imagenet_to_16

RAW = registry.path("model-vs-human") / "raw-data"


@pytest.fixture(scope="module")
def cue():
    return M.load_dataset(RAW, "cue-conflict")


def test_file_name_parsing():
    assert M.texture_category("0001_s5n_s01_0_bird_00_bird3-bird2.png") == "bird"
    assert M.texture_category("airplane1-bicycle2.png") == "bicycle"
    assert M.texture_category("0123_s5n_dnn_0_dog_00_dog10-elephant12.png") == "elephant"
    assert M.short_imagename("0000_cl_s01_bw_boat_40_n02951358_5952.JPEG") == "n02951358_5952.JPEG"
    assert M.short_imagename("airplane1-bicycle2.png") == "airplane1-bicycle2.png"
    assert M.short_imagename("0001_ske_s01_0_boat_00_boat-0068-sketch-23.png") == "boat-0068-sketch-23.png"


def test_subject_01_cue_conflict_shape_bias_is_the_published_829_of_862(cue):
    s1 = cue[cue.subj == "subject-01"]
    assert len(s1) == 1280
    sb = M.shape_bias(s1)
    assert (sb["shape"], sb["texture"]) == (829, 33)
    assert sb["conflict_trials"] == 1200  # the 80 trials whose shape equals their texture are dropped
    assert sb["shape-bias"] == pytest.approx(829 / 862) and round(sb["shape-bias"], 3) == 0.962


def test_every_human_is_strongly_shape_biased(cue):
    """Humans: 92-99% shape bias, mean 96% (Geirhos et al. 2019; Jaini et al. 2024, Table 1)."""
    biases = [M.shape_bias(cue[cue.subj == s])["shape-bias"] for s in M.humans(cue)]
    assert len(biases) == 10
    assert (round(min(biases), 2), round(max(biases), 2), round(float(np.mean(biases)), 2)) == (0.92, 0.99, 0.96)


def _kappa_by_hand(a, b):
    """Cohen's kappa of two observers' correctness, from dicts image -> correct."""
    keys = sorted(a)
    assert keys == sorted(b)
    ca = np.array([a[k] for k in keys], dtype=float)
    cb = np.array([b[k] for k in keys], dtype=float)
    p1, p2 = ca.mean(), cb.mean()
    c_exp = p1 * p2 + (1 - p1) * (1 - p2)
    c_obs = (ca == cb).mean()
    return c_obs, c_exp, (c_obs - c_exp) / (1 - c_exp)


def test_error_consistency_of_two_humans_equals_the_hand_computation(cue):
    def correct(s):
        d = cue[cue.subj == s]
        return {M.short_imagename(n): r == c for n, r, c in zip(d.imagename, d.object_response, d.category)}

    c_obs, c_exp, kappa = _kappa_by_hand(correct("subject-01"), correct("subject-02"))
    ec = M.error_consistency(cue[cue.subj == "subject-01"], cue[cue.subj == "subject-02"])
    assert ec["observed-consistency"] == pytest.approx(c_obs, abs=1e-12)
    assert ec["expected-consistency"] == pytest.approx(c_exp, abs=1e-12)
    assert ec["error-consistency"] == pytest.approx(kappa, abs=1e-12)


def _trials(subj, correct, images=None):
    images = images or [f"img{i}.png" for i in range(len(correct))]
    return pd.DataFrame({"subj": subj, "object_response": ["cat" if c else "dog" for c in correct],
                         "category": "cat", "condition": "0", "imagename": images,
                         "image_id": images})


def test_kappa_edge_cases():
    # identical correctness: c_obs = 1 -> kappa = 1, even when c_exp = 1 (no errors at all)
    all_right = M.error_consistency(_trials("a", [1, 1, 1]), _trials("b", [1, 1, 1]))
    assert all_right["expected-consistency"] == 1.0 and all_right["error-consistency"] == 1.0
    same = M.error_consistency(_trials("a", [1, 0, 1, 0]), _trials("b", [1, 0, 1, 0]))
    assert same["error-consistency"] == 1.0
    # exactly opposite: c_obs = 0, p1 = p2 = 0.5 -> c_exp = 0.5, kappa = -1
    opp = M.error_consistency(_trials("a", [1, 0, 1, 0]), _trials("b", [0, 1, 0, 1]))
    assert (opp["observed-consistency"], opp["expected-consistency"], opp["error-consistency"]) == (0.0, 0.5, -1.0)
    # trials are aligned by image, not by row order
    a = _trials("a", [1, 0, 0], ["x.png", "y.png", "z.png"])
    b = _trials("b", [0, 0, 1], ["z.png", "y.png", "x.png"])
    assert M.error_consistency(a, b)["observed-consistency"] == 1.0
    with pytest.raises(ValueError, match="same images"):
        M.error_consistency(a, _trials("b", [1, 0, 0], ["x.png", "y.png", "w.png"]))
    with pytest.raises(ValueError):
        M.error_consistency(a, _trials("b", [1, 0]))


def test_shape_bias_edge_cases():
    df = pd.DataFrame({"category": ["cat", "cat", "cat", "dog"],
                       "imagename": ["cat1-dog1.png", "cat2-dog2.png", "cat3-cat1.png", "dog1-cat2.png"],
                       "object_response": ["cat", "bird", "dog", "dog"]})
    sb = M.shape_bias(df)
    # row 3 (cat on cat) is dropped; "bird" matches neither cue and is ignored
    assert (sb["shape"], sb["texture"], sb["conflict_trials"]) == (2, 0, 3) and sb["shape-bias"] == 1.0
    df.loc[:, "object_response"] = ["dog", "dog", "cat", "cat"]
    assert M.shape_bias(df)["shape-bias"] == 0.0
    df.loc[:, "object_response"] = ["bird"] * 4
    assert np.isnan(M.shape_bias(df)["shape-bias"])  # no response matched either cue


def test_conditions_are_read_as_the_toolbox_sees_them():
    hp = M.load_dataset(RAW, "high-pass")
    assert set(M.DATA_CONDITIONS["high-pass"]) == set(hp.condition.unique())
    for ds in ("uniform-noise", "false-colour", "low-pass", "contrast", "eidolonI", "rotation"):
        df = M.load_dataset(RAW, ds)
        assert set(df.condition.unique()) == set(M.DATA_CONDITIONS[ds]), ds
    assert M.included_conditions("contrast") == ["c50", "c30", "c15", "c10", "c05"]
    assert M.included_conditions("eidolonIII") == ["2-0-10", "4-0-10", "8-0-10"]
    assert M.included_conditions("edge") is None


def test_human_human_consistency_per_dataset_averages_each_pair_once():
    df = M.load_dataset(RAW, "contrast")
    hs = M.humans(df)
    assert hs == ["subject-01", "subject-02", "subject-03", "subject-04"]
    out = M.human_consistency(df, "contrast")
    assert out["pairs"] == 6
    by_hand = []
    for i in range(4):
        for j in range(i + 1, 4):
            ks = [M.error_consistency(df[(df.subj == hs[i]) & (df.condition == c)],
                                      df[(df.subj == hs[j]) & (df.condition == c)])["error-consistency"]
                  for c in ("c50", "c30", "c15", "c10", "c05")]
            by_hand.append(np.mean(ks))
    assert out["error consistency"] == pytest.approx(np.mean(by_hand), abs=1e-12)
    kept = df[df.condition.isin(["c50", "c30", "c15", "c10", "c05"])]
    assert out["OOD accuracy"] == pytest.approx((kept.object_response == kept.category).mean(), abs=1e-12)


def test_benchmark_averages_conditions_then_humans_then_datasets(tmp_path):
    frames = {ds: M.load_dataset(RAW, ds) for ds in ("contrast", "rotation")}
    # a model that copies subject-01's responses on both datasets
    for ds, df in frames.items():
        s1 = df[df.subj == "subject-01"]
        rows = [{"object_response": r, "category": c, "condition": k, "imagename": n.replace("_s01_", "_dnn_")}
                for r, c, k, n in zip(s1.object_response, s1.category, s1.condition, s1.imagename)]
        write_decisions(tmp_path, ds, "copy_cat", rows)
        model = M.read_trials(decision_path(tmp_path, ds, "copy_cat"))
        assert decision_path(tmp_path, ds, "copy_cat").name == f"{ds}_copy-cat_session-1.csv"
        assert list(model.subj.unique()) == ["copy_cat"]
        frames[ds] = pd.concat([df, model], ignore_index=True)
    table = M.benchmark(frames)
    expect = {}
    for ds, df in frames.items():
        per_h = [M.pair_metrics(df, ds, "copy_cat", h)["error consistency"] for h in M.humans(df)]
        expect[ds] = np.mean(per_h)
        assert 1.0 in per_h  # kappa with subject-01 itself
    assert table["copy_cat"]["error consistency"] == pytest.approx(np.mean(list(expect.values())), abs=1e-12)
    assert table["copy_cat"]["OOD accuracy"] == pytest.approx(np.mean(
        [M.ood_accuracy(df, ds, ["subject-01"]) for ds, df in frames.items()]), abs=1e-12)
    assert set(table) == {"copy_cat", "humans"}
    assert M.most_human_like(table) == [("copy_cat", 1.0)]


def test_imagenet_to_16_is_the_mean_over_each_category():
    assert sum(len(v) for v in IMAGENET_INDICES.values()) == 207
    assert len({i for v in IMAGENET_INDICES.values() for i in v}) == 207
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(1000), size=3)
    out = imagenet_to_16(p)
    assert out.shape == (3, 16)
    k = M.CATEGORIES.index("bear")
    assert out[1, k] == pytest.approx(p[1, [294, 295, 296, 297]].mean())
    q = np.full((1, 1000), 0.5 / 999)
    q[0, 404] = 0.5  # airplane has one index: its mean is the probability itself
    assert decide_16(q) == ["airplane"]
    with pytest.raises(ValueError, match="softmax"):
        imagenet_to_16(np.full((1, 1000), 2.0))


def test_humans_command_tabulates_every_pair(capsys):
    from discern.cli import main

    assert main(["psychophysics", "humans", "--datasets", "contrast,edge", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert (table["contrast"]["subjects"], table["contrast"]["pairs"]) == (4, 6)
    assert (table["edge"]["subjects"], table["edge"]["pairs"]) == (10, 45)
    edge = M.load_dataset(RAW, "edge")
    assert table["edge"]["error consistency"] == pytest.approx(np.mean(
        [M.error_consistency(edge[edge.subj == a], edge[edge.subj == b])["error-consistency"]
         for i, a in enumerate(M.humans(edge)) for b in M.humans(edge)[i + 1:]]), abs=1e-12)


def test_shape_bias_fisher_test():
    from discern.psychophysics.experiment import shape_bias_p

    # hypergeometric tail by hand: 2 x 2 table [[3, 0], [0, 3]]: P = 1 / C(6, 3) = 1 / 20
    assert shape_bias_p({"shape": 3, "texture": 0}, {"shape": 0, "texture": 3}) == pytest.approx(1 / 20)
    assert shape_bias_p({"shape": 0, "texture": 3}, {"shape": 3, "texture": 0}) == pytest.approx(1.0)


def test_evaluate_a_human_subject_file_compares_with_the_other_humans(cue, tmp_path, capsys):
    """A human subject's own file from model-vs-human (1,280 trials) once crashed with
    "error consistency needs two non-empty sets of the same trials (1280 vs 2560)": the subject
    was paired with itself.  It is compared with the 9 other subjects instead."""
    from discern.cli import main

    src = RAW / "cue-conflict" / "cue-conflict_subject-05_session_1.csv"
    assert main(["psychophysics", "evaluate", "--decisions", str(src), "--out", str(tmp_path / "h.json")]) == 0
    capsys.readouterr()
    vs = json.loads((tmp_path / "h.json").read_text())["cue-conflict"]["subject-05"]["vs_humans"]
    others = [h for h in M.humans(cue) if h != "subject-05"]
    assert vs["humans compared"] == len(others) == 9
    expected = np.mean([M.pair_metrics(cue, "cue-conflict", "subject-05", h)["error consistency"] for h in others])
    assert vs["error consistency"] == pytest.approx(expected, abs=1e-12)
    assert 0 < vs["error consistency"] < 1  # never the 1.0 of a subject against itself


def test_evaluate_a_model_on_the_human_images_gives_the_benchmark_row(cue, tmp_path, capsys):
    """A model's decisions on the human experiment's images: ``vs_humans`` equals its row of the
    benchmark table over all 10 humans (here the 'model' answers the texture cue every time)."""
    from discern.cli import main

    one = cue[cue.subj == "subject-01"].copy()
    one["subj"] = "texture-model"
    one["object_response"] = [M.texture_category(n) for n in one["imagename"]]
    path = tmp_path / "cue-conflict_texture-model_session_1.csv"
    one[["subj", "session", "trial", "rt", "object_response", "category", "condition", "imagename"]].to_csv(
        path, index=False)
    assert main(["psychophysics", "evaluate", "--decisions", str(path), "--out", str(tmp_path / "m.json")]) == 0
    capsys.readouterr()
    vs = json.loads((tmp_path / "m.json").read_text())["cue-conflict"]["texture-model"]["vs_humans"]
    both = pd.concat([cue, M.read_trials([path])], ignore_index=True)
    row = M.benchmark({"cue-conflict": both})["texture-model"]
    assert vs["humans compared"] == 10
    for k, v in row.items():
        assert vs[k] == pytest.approx(v, abs=1e-12), k
    assert vs["error consistency"] < 0.1  # a texture-only observer errs where humans do not


def test_all_pairs_at_once_equal_the_pair_at_a_time_metrics(cue):
    from itertools import combinations

    contrast = M.load_dataset(RAW, "contrast")
    for df, ds in ((cue, "cue-conflict"), (contrast, "contrast")):
        hs = M.humans(df)
        fast = M.pairwise_metrics(df, ds, hs)
        assert list(fast) == list(combinations(hs, 2))
        for (a, b), row in fast.items():
            assert row == M.pair_metrics(df, ds, a, b)  # the same floats, not just close
    moved = cue[cue.subj.isin(["subject-01", "subject-02"])].copy()
    moved.loc[moved.subj == "subject-02", "image_id"] = "x" + moved.loc[moved.subj == "subject-02", "image_id"]
    with pytest.raises(ValueError, match="did not see the same images"):
        M.pairwise_metrics(moved, "cue-conflict", ["subject-01", "subject-02"])


def _cue_trials(subj, responses):
    """Cue-conflict trials of one observer on three conflict images and one shape = texture image."""
    names = ["circle1-square1.png", "square1-star1.png", "star1-circle1.png", "circle2-circle1.png"]
    cats = ["circle", "square", "star", "circle"]
    return pd.DataFrame({"subj": subj, "object_response": responses, "category": cats, "imagename": names,
                         "image_id": names, "condition": "NaN"})


def test_shape_bias_difference_bootstrap_over_stimuli():
    from discern.psychophysics.analysis import shape_bias_difference

    shape = _cue_trials("a", ["circle", "square", "star", "circle"])
    texture = _cue_trials("b", ["square", "star", "circle", "square"])
    d = shape_bias_difference(shape, texture, n_resamples=500, seed=0)
    assert (d["n"], d["shape"], d["texture"]) == (3, [3, 0], [0, 3])  # the shape = texture image is dropped
    assert d["difference"] == 1.0 and d["ci"] == [1.0, 1.0] and d["p_value"] == 0.0
    same = shape_bias_difference(shape, shape.assign(subj="c"), n_resamples=500, seed=0)
    assert same["difference"] == 0.0 and same["ci"] == [0.0, 0.0] and same["p_value"] == 1.0
    # a shuffled row order is realigned by image
    assert shape_bias_difference(shape.iloc[::-1], texture, n_resamples=500, seed=0) == d
    # one shape, one texture, one neither: 1/2 vs 0; resamples drawing only the 'neither' image are undefined
    mixed = _cue_trials("m", ["circle", "star", "oven", "circle"])
    m = shape_bias_difference(mixed, texture, n_resamples=2000, seed=1)
    assert m["difference"] == pytest.approx(0.5) and m["ci"][0] <= 0.5 <= m["ci"][1]
    assert 0 < m["undefined_resamples"] < 2000 * 0.1  # (1/3)^3 of the draws, about 74
    nothing = _cue_trials("z", ["oven", "oven", "oven", "oven"])
    assert shape_bias_difference(nothing, texture)["ci"] is None
    with pytest.raises(ValueError, match="same cue-conflict stimuli"):
        shape_bias_difference(shape.iloc[1:], texture)  # one conflict image missing
