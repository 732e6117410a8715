"""Psychophysics of classifiers (Jaini, Clark & Geirhos 2024; model-vs-human, Geirhos et al. 2021):
shape bias, OOD accuracy and error consistency for any classifier, and a shape x texture world."""

from discern.core.paper import Paper

PAPER = Paper("psychophysics", title="Intriguing Properties of Generative Classifiers (Jaini, Clark & Geirhos, ICLR 2024)", package=__name__, number=7, run="discern.reproduce.psychophysics:run",
              data=())  # synthetic stimuli and a drawn training set: no registry data

__all__ = ["analysis", "classifiers", "config", "decisions", "efficientnet", "evaluate", "imagenet16",
           "imagenet_models", "metrics", "model_eval", "stimuli"]
