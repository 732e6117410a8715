"""Med-PaLM 2 question answering (Singhal et al. 2023): the four prompting strategies (few-shot,
chain of thought, self-consistency, ensemble refinement), answer extraction and voting, the
MultiMedQA readers, evaluation output and the ordering test of the strategies, long-form answers, and
the human-evaluation web application (``medqa.rating``).  Configs and presets live in ``config``."""

from discern.core.paper import Paper

PAPER = Paper("medqa", title="Towards Expert-Level Medical Question Answering with Large Language Models (Singhal et al., 2023: Med-PaLM 2)", package=__name__, number=9,
              data={"tiny": ("mmlu-clinical", "pubmedqa", "medqa-usmle"),
                    "paper": ("mmlu-clinical", "pubmedqa", "medqa-usmle", "qwen2.5-1.5b"),
                    "*": ("mmlu-clinical", "pubmedqa", "medqa-usmle", "qwen2.5-0.5b")})

__all__ = ["answers", "backend", "config", "data", "evaluate", "longform", "prompts", "strategies"]
