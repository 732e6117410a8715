"""Med-PaLM 2 question answering (Singhal et al. 2023): prompting strategies, answer extraction,
voting.  The evaluation harness and the human-rating application are still to come."""

__all__ = ["answers", "prompts", "strategies"]
