"""``torch.distributed`` helpers: DDP under ``torchrun`` (gloo on CPU, NCCL on GPU)."""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def init_from_env() -> tuple[int, int]:
    """Initialise the process group when launched by ``torchrun``; returns ``(rank, world)``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not is_distributed():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return rank(), world_size()


def device() -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` when a GPU is visible, else the CPU; a command's
    ``--device cpu`` (:func:`discern.core.device.apply`) keeps it on the CPU, and its ``--device cuda:N``
    picks that GPU outside ``torchrun``."""
    from discern.core.device import chosen

    want = chosen()
    if want is not None and want.type == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        if want is not None and want.index is not None and "LOCAL_RANK" not in os.environ:
            d = want  # --device cuda:N outside torchrun
        else:
            d = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(d)
        return d
    return torch.device("cpu")


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """The main process's ``obj`` on every rank (e.g. the run folder path)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    if not is_distributed():
        return x
    y = x.detach().clone()
    dist.all_reduce(y)
    return y / world_size()


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()
