"""Text-to-image diffusion models as zero-shot classifiers (Clark & Jaini, NeurIPS 2023), with
Li et al.'s (ICCV 2023) fixed schedule as a peer."""

from discern.core.paper import Paper

PAPER = Paper("diffusion_classifier", title="Text-to-Image Diffusion Models are Zero-Shot Classifiers (Clark & Jaini, NeurIPS 2023)", package=__name__, number=6,
              data=("fashion-mnist",))
