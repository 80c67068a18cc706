"""More than one process: what the trainer needs to run under ``torchrun``.

``torchrun --nproc-per-node N -m course_lib pretrain ...`` starts N copies of the same program
and tells each its rank through environment variables. Each copy trains on its share of every
global batch, and DistributedDataParallel averages the gradients, so N processes take the same
steps as one process with the whole batch. Only rank 0 writes checkpoints and prints.

Without ``torchrun`` (``WORLD_SIZE`` unset) every function here is a no-op for one process.
"""
import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", 1))


def rank() -> int:
    return int(os.environ.get("RANK", 0))


def is_main() -> bool:
    """Rank 0: the process that prints, draws the progress bar and writes checkpoints."""
    return rank() == 0


def device_for(device: torch.device) -> torch.device:
    """Under torchrun each process drives its own GPU (``LOCAL_RANK``); CPU processes share the CPU."""
    if device.type == "cuda" and world_size() > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def init(device: torch.device) -> int:
    """Join the process group once (NCCL between GPUs, gloo on CPU); return the world size.

    CPU processes split the machine's cores between them instead of each taking them all.
    """
    world = world_size()
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        else:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world


def sum_over_processes(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``tensor`` over every process (itself alone without torchrun)."""
    if world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gather(obj) -> list:
    """Every process's ``obj``, in rank order, on every process (``[obj]`` without torchrun)."""
    if world_size() == 1:
        return [obj]
    found = [None] * world_size()
    dist.all_gather_object(found, obj)
    return found


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def shutdown() -> None:
    """Leave the process group at the end of a program (what ``init`` joined), so it exits cleanly.

    Every process waits for the others first: one that tears down gloo's connections while another is still
    using them can make that other process abort at exit (``terminate called without an active exception``).
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
