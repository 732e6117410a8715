"""The shape x texture world: deterministic, labels right, names in the toolbox's convention."""

import numpy as np
import pytest

from discern.psychophysics import metrics as M
from discern.psychophysics.stimuli import (SHAPES, TEXTURES, all_stimuli, distort, render, shape_mask, texture,
                                           training_set, write_stimuli)


def test_training_set_is_deterministic_and_textures_follow_the_class_at_the_set_rate():
    a, la, ta = training_set(600, 32, texture_match=0.8, seed=5)
    b, lb, tb = training_set(600, 32, texture_match=0.8, seed=5)
    assert np.array_equal(a, b) and np.array_equal(la, lb) and np.array_equal(ta, tb)
    assert a.shape == (600, 32, 32) and a.dtype == np.uint8
    assert abs((la == ta).mean() - 0.8) < 0.05
    _, lc, tc = training_set(200, 32, texture_match=1.0, seed=1)
    assert np.array_equal(lc, tc)


def test_rendered_object_is_its_shape_filled_with_its_texture():
    img = render("square", "hstripes", 32, np.random.default_rng(0))
    # the same draws give the object's place and size: recover its mask
    rng = np.random.default_rng(0)
    r = 32 * rng.uniform(0.28, 0.36)
    cx, cy = 16 + rng.uniform(-0.08, 0.08, 2) * 32
    obj = shape_mask("square", 32, cx, cy, r)
    ys, xs = np.nonzero(obj)
    assert obj[ys.min():ys.max() + 1, xs.min():xs.max() + 1].all()  # a square fills its bounding box
    # horizontal stripes: constant along each row inside the object, two levels (0.2 and 0.8)
    inside = img[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    assert (inside.std(axis=1) < 1e-9).all() and set(np.round(np.unique(inside), 6)) == {0.2, 0.8}
    # the background is pixel noise in [0.2, 0.8] with no stripes
    bg = img[~obj]
    assert bg.min() >= 0.2 and bg.max() <= 0.8 and len(np.unique(bg)) > 100
    # shapes differ from each other
    masks = [shape_mask(s, 32, 16, 16, 10) for s in SHAPES]
    for i in range(len(SHAPES)):
        for j in range(i + 1, len(SHAPES)):
            assert (masks[i] != masks[j]).sum() > 10, (SHAPES[i], SHAPES[j])
    with pytest.raises(ValueError, match="unknown shape"):
        shape_mask("hexagon", 32, 16, 16, 10)
    with pytest.raises(ValueError, match="unknown texture"):
        texture("plaid", 32, rng)


def test_test_sets_carry_the_toolbox_names_and_labels(tmp_path):
    st = all_stimuli(per_pair=1, per_class=1, param_per_class=1, size=32, seed=3)
    again = all_stimuli(per_pair=1, per_class=1, param_per_class=1, size=32, seed=3)
    assert all(np.array_equal(a.image, b.image) and a.imagename == b.imagename for a, b in zip(st, again))
    cue = [s for s in st if s.dataset == "cue-conflict"]
    assert len(cue) == len(SHAPES) * len(TEXTURES)
    for s in cue:  # the shape label is the category, the texture label parses from the name
        shape, tex = s.imagename.split("-")
        assert shape.rstrip("0123456789") == s.category
        assert M.texture_category(s.imagename) in SHAPES
    assert sum(M.texture_category(s.imagename) != s.category for s in cue) == len(SHAPES) * (len(SHAPES) - 1)
    contrast = [s for s in st if s.dataset == "contrast"]
    assert sorted({s.condition for s in contrast}) == sorted(M.DATA_CONDITIONS["contrast"])
    for s in contrast:
        f = s.imagename.split("_")
        assert f[1] == "cop" and f[2] == "dnn" and f[3] == s.condition and f[4] == s.category
        assert s.relpath == f"contrast/dnn/session-1/{s.imagename}"
    rows = write_stimuli(st[:20], tmp_path)
    assert (tmp_path / "manifest.csv").is_file() and (tmp_path / rows[0]["path"]).is_file()


def test_distortions():
    rng = np.random.default_rng(0)
    x = render("circle", "checker", 32, rng)
    assert np.allclose(distort(x, "contrast", "c100", rng), x)
    low = distort(x, "contrast", "c10", rng)
    assert np.allclose(low - 0.5, 0.1 * (x - 0.5))
    assert np.array_equal(distort(x, "rotation", "90", rng), np.rot90(x))
    assert np.allclose(distort(x, "low-pass", "0", rng), x) and distort(x, "low-pass", "40", rng).std() < x.std()
    assert np.array_equal(distort(x, "high-pass", "inf", rng), x)
    ps = distort(x, "phase-scrambling", "0", rng)
    assert np.allclose(ps, x, atol=1e-9)  # no phase noise: the image itself
    noisy = distort(x, "uniform-noise", "0.35", rng)
    assert noisy.min() >= 0 and noisy.max() <= 1 and np.abs(noisy - (0.5 + 0.3 * (x - 0.5))).max() <= 0.35 + 1e-12
    with pytest.raises(ValueError, match="unknown distortion"):
        distort(x, "eidolonI", "2-10-10", rng)
