"""Psychophysics of classifiers (Jaini, Clark & Geirhos 2024; model-vs-human, Geirhos et al. 2021):
shape bias, OOD accuracy and error consistency for any classifier, and a shape x texture world."""

__all__ = ["metrics", "decisions", "stimuli", "imagenet16"]
