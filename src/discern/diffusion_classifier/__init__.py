"""Text-to-image diffusion models as zero-shot classifiers (Clark & Jaini, NeurIPS 2023), with
Li et al.'s (ICCV 2023) fixed schedule as a peer."""
