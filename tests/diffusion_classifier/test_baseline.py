import torch

from discern.data.corpora import fashion_mnist
from discern.diffusion.captions import to_tensor
from discern.diffusion_classifier.baseline import accuracy, train_cnn


def test_cnn_baseline_learns_fashion_mnist_far_above_chance():
    imgs, labels = fashion_mnist("train")
    timgs, tlabels = fashion_mnist("test")
    model = train_cnn(to_tensor(imgs[:3000]), labels[:3000], 10, epochs=2)
    acc = accuracy(model, to_tensor(timgs[:1000]), tlabels[:1000])
    assert acc > 70.0  # chance is 10%
    # the same seed trains the same model
    again = train_cnn(to_tensor(imgs[:256]), labels[:256], 10, epochs=1)
    twice = train_cnn(to_tensor(imgs[:256]), labels[:256], 10, epochs=1)
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), twice.parameters()))
