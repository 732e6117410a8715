"""Med-PaLM 2 question answering (Singhal et al. 2023): the four prompting strategies (few-shot,
chain of thought, self-consistency, ensemble refinement), answer extraction and voting, the
MultiMedQA readers, evaluation output, long-form answers, and the human-evaluation web application
(``medqa.rating``)."""

__all__ = ["answers", "data", "evaluate", "longform", "prompts", "strategies"]
