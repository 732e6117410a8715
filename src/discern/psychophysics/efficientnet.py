"""EfficientNet-Lite0, an ImageNet-1k CNN, as a plain ``torch.nn.Module`` whose parameter names are
those of the released PyTorch checkpoint ``efficientnet-lite0-57934424.pth`` (``_conv_stem``,
``_bn0``, ``_blocks.N.{_expand_conv, _bn0, _depthwise_conv, _bn1, _project_conv, _bn2}``,
``_conv_head``, ``_bn1``, ``_fc``), so the file loads with ``strict=True``.

The architecture is EfficientNet-B0 of Tan & Le, *EfficientNet: Rethinking Model Scaling for
Convolutional Neural Networks*, ICML 2019 (arXiv 1905.11946):

- §4, Table 1: the B0 baseline -- a 3x3 stride-2 stem conv with 32 channels, seven stages of
  mobile inverted bottlenecks (MBConv, Sandler et al. 2018) with (expansion, kernel, stride,
  channels, repeats) = (1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
  (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1), then a 1x1 conv to 1280 channels,
  global average pooling and a fully connected layer.  The stride of each stage is read from the
  resolution column of Table 1; the channels, kernels and expansions are also visible in the
  checkpoint's weight shapes (which :func:`check_config` compares).
- §3.3 / §5 (Lite0 uses the baseline's width, depth and resolution 224: coefficients 1.0, 1.0).

The *Lite* variant (the TensorFlow release "EfficientNet-Lite", tensorflow/tpu
``models/official/efficientnet/lite``) changes B0 for mobile accelerators in three ways, all
mirrored here: squeeze-and-excitation is removed from every MBConv block; swish is replaced by
ReLU6; the stem (32) and head (1280) widths stay fixed when the network is scaled (no effect at
Lite0's width 1.0).  Convolutions have no bias (batch norm follows each one); the skip connection
is used when a block keeps its stride at 1 and its channel count; dropout (0.2) before the
classifier and drop-connect are training-only and absent at inference.

Three conventions are not in the weights; each was chosen by measurement on the real stimuli
(all 8 combinations; numbers in the package README):

- padding: TensorFlow's "SAME" (asymmetric for stride 2: the odd pixel goes to the bottom / right),
  not PyTorch's symmetric ``k // 2``: edge + silhouette accuracy 0.39 vs 0.33 (eps 1e-5, TF
  normalisation), and the inputs of the 48 batch norms after the stem closer to their running
  variances (median |log ratio| 0.18 vs 0.25, averaged over layers);
- input normalisation: TensorFlow-Lite's ``(x - 127) / 128`` of 8-bit pixels, not the ImageNet
  mean / std: the stem batch norm's inputs then match its running variance (median |log ratio|
  0.40 vs 1.20), and edge + silhouette accuracy rises (0.39 vs 0.34);
- batch-norm epsilon 1e-5: 34 of those 48 batch norms' inputs match their running variance better
  than with TensorFlow's 1e-3, and edge + silhouette accuracy is 0.39 vs 0.37 (a small effect:
  3% of the channels have a running variance below 1e-3).

:data:`DEFAULT_PADDING`, :data:`DEFAULT_BN_EPS` and :data:`DEFAULT_NORM` hold these choices; the
alternatives stay selectable.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from discern.core.errors import CheckpointError, DataError

CHECKPOINT = "efficientnet-lite0-57934424.pth"
CHECKPOINT_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
# (expansion, kernel, stride, output channels, repeats) per stage, Tan & Le 2019, Table 1
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
STEM, HEAD, NUM_CLASSES, RESOLUTION = 32, 1280, 1000, 224
# input normalisation: ImageNet channel mean / std (torchvision's), or TensorFlow-Lite's (x - 127) / 128
NORMS = {"imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
         "tf": ((127.0 / 255,) * 3, (128.0 / 255,) * 3)}
DEFAULT_PADDING, DEFAULT_BN_EPS, DEFAULT_NORM = "same", 1e-5, "tf"
# the evaluation crop: resize the shorter side to 256, centre-crop 224 (model-vs-human's PyTorch pipeline)
RESIZE, CROP = 256, 224


def _torch():
    import torch

    return torch


def _modules():
    """The module classes, built on first use so that importing this file does not import torch."""
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class Conv2d(nn.Conv2d):
        """A bias-free convolution padded either symmetrically (``k // 2``, PyTorch style) or as
        TensorFlow's "SAME" (total padding ``max((ceil(n / s) - 1) s + k - n, 0)`` per side pair,
        the odd pixel on the bottom / right), computed from the input size."""

        def __init__(self, cin, cout, k, stride=1, groups=1, padding="same"):
            if padding not in ("same", "symmetric"):
                raise ValueError(f"padding must be 'same' or 'symmetric', not {padding!r}")
            super().__init__(cin, cout, k, stride=stride, groups=groups, bias=False,
                             padding=k // 2 if padding == "symmetric" else 0)
            self.tf_same = padding == "same"

        def forward(self, x):
            if self.tf_same:
                pads = []
                for n, k, s in ((x.shape[-1], self.kernel_size[1], self.stride[1]),
                                (x.shape[-2], self.kernel_size[0], self.stride[0])):
                    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
                    pads += [total // 2, total - total // 2]
                if any(pads):
                    x = F.pad(x, pads)
            return super().forward(x)

    class MBConv(nn.Module):
        """Mobile inverted bottleneck without squeeze-excite: 1x1 expand (skipped at expansion 1),
        k x k depthwise, 1x1 linear projection; ReLU6 after the first two; identity skip when
        the stride is 1 and the channels are kept."""

        def __init__(self, cin, cout, expand, k, stride, eps, padding):
            super().__init__()
            mid = cin * expand
            if expand != 1:
                self._expand_conv = Conv2d(cin, mid, 1, padding=padding)
                self._bn0 = nn.BatchNorm2d(mid, eps=eps)
            self._depthwise_conv = Conv2d(mid, mid, k, stride=stride, groups=mid, padding=padding)
            self._bn1 = nn.BatchNorm2d(mid, eps=eps)
            self._project_conv = Conv2d(mid, cout, 1, padding=padding)
            self._bn2 = nn.BatchNorm2d(cout, eps=eps)
            self.expand = expand
            self.skip = stride == 1 and cin == cout

        def forward(self, x):
            h = x
            if self.expand != 1:
                h = F.relu6(self._bn0(self._expand_conv(h)))
            h = F.relu6(self._bn1(self._depthwise_conv(h)))
            h = self._bn2(self._project_conv(h))
            return h + x if self.skip else h

    class EfficientNetLite(nn.Module):
        """EfficientNet-Lite0: ``forward(x)`` takes normalised (N, 3, 224, 224) images and returns
        (N, 1000) ImageNet logits."""

        def __init__(self, num_classes=NUM_CLASSES, bn_eps=DEFAULT_BN_EPS, padding=DEFAULT_PADDING):
            super().__init__()
            self._conv_stem = Conv2d(3, STEM, 3, stride=2, padding=padding)
            self._bn0 = nn.BatchNorm2d(STEM, eps=bn_eps)
            blocks, cin = [], STEM
            for expand, k, stride, cout, repeats in STAGES:
                for i in range(repeats):
                    blocks.append(MBConv(cin, cout, expand, k, stride if i == 0 else 1, bn_eps, padding))
                    cin = cout
            self._blocks = nn.ModuleList(blocks)
            self._conv_head = Conv2d(cin, HEAD, 1, padding=padding)
            self._bn1 = nn.BatchNorm2d(HEAD, eps=bn_eps)
            self._fc = nn.Linear(HEAD, num_classes)

        def forward(self, x):
            h = F.relu6(self._bn0(self._conv_stem(x)))
            for b in self._blocks:
                h = b(h)
            h = F.relu6(self._bn1(self._conv_head(h)))
            return self._fc(h.mean(dim=(2, 3)))

    return EfficientNetLite


def build(bn_eps: float = DEFAULT_BN_EPS, padding: str = DEFAULT_PADDING):
    """An untrained EfficientNet-Lite0 (1000 classes)."""
    return _modules()(bn_eps=bn_eps, padding=padding)


def checkpoint_file(folder) -> Path:
    """The checkpoint inside an installed model folder (or the file itself)."""
    p = Path(folder)
    f = p / CHECKPOINT if p.is_dir() else p
    if not f.is_file():
        raise DataError(f"{f}: no EfficientNet-Lite0 checkpoint ({CHECKPOINT}) here")
    return f


def load(folder=None, bn_eps: float = DEFAULT_BN_EPS, padding: str = DEFAULT_PADDING):
    """EfficientNet-Lite0 with the released ImageNet weights, loaded strictly, in eval mode.
    ``folder``: the installed model folder (default ``model_path("efficientnet-lite0")``) or the .pth."""
    torch = _torch()
    if folder is None:
        from discern.data.models import model_path

        folder = model_path("efficientnet-lite0")
    f = checkpoint_file(folder)
    try:
        state = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, not a pickle, a pickle with objects weights_only refuses
        raise CheckpointError(f"{f}: not a readable torch checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{f}: expected a state dict, found {type(state).__name__}")
    model = build(bn_eps, padding)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[1:2] or [str(e)]
        raise CheckpointError(f"{f}: does not match EfficientNet-Lite0 ({first[0].strip()[:160]})") from None
    return model.eval()


def check_config(state: dict) -> list[str]:
    """Differences between :data:`STAGES` and the block shapes of a state dict (empty when they agree):
    per block, the expansion (expand conv present or not), kernel size, and output channels."""
    want = [(e, k, c) for e, k, _, c, r in STAGES for _ in range(r)]
    got, i = [], 0
    while f"_blocks.{i}._depthwise_conv.weight" in state:
        dw = state[f"_blocks.{i}._depthwise_conv.weight"]
        proj = state[f"_blocks.{i}._project_conv.weight"]
        exp_key = f"_blocks.{i}._expand_conv.weight"
        expand = dw.shape[0] // state[exp_key].shape[1] if exp_key in state else 1
        got.append((expand, dw.shape[-1], proj.shape[0]))
        i += 1
    if len(got) != len(want):
        return [f"{len(got)} blocks in the checkpoint, {len(want)} in the configuration"]
    return [f"block {j}: checkpoint (expand, kernel, channels) {g}, configuration {w}"
            for j, (g, w) in enumerate(zip(got, want)) if g != w]


def preprocess(images, norm=DEFAULT_NORM, resize: int = RESIZE, crop: int = CROP, resample: str = "bilinear"):
    """PIL images -> a normalised (N, 3, crop, crop) float tensor: RGB, shorter side resized to
    ``resize`` (``resample``: bilinear or bicubic), centre crop ``crop``, scaled to [0, 1], then
    (x - mean) / std.  ``norm``: a name in :data:`NORMS` or a ``(mean, std)`` pair of triples."""
    torch = _torch()
    from PIL import Image

    mean, std = NORMS[norm] if isinstance(norm, str) else norm
    method = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}.get(resample, Image.BILINEAR)
    out = []
    for im in images:
        im = im.convert("RGB")
        w, h = im.size
        s = resize / min(w, h)
        im = im.resize((max(crop, round(w * s)), max(crop, round(h * s))), method)
        w, h = im.size
        left, top = (w - crop) // 2, (h - crop) // 2
        im = im.crop((left, top, left + crop, top + crop))
        out.append(np.asarray(im, dtype=np.float32) / 255.0)
    x = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
