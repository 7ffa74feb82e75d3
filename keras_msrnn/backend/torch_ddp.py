"""BACKEND-SPECIFIC: PyTorch's DistributedDataParallel under `torchrun`, for Keras's `fit`.

One process per device, launched by `torchrun`, which sets `RANK`,
`WORLD_SIZE`, `LOCAL_RANK` and the rendezvous address. Each process builds
the same model, wraps it in `torch.nn.parallel.DistributedDataParallel`
(gloo on CPUs, NCCL on GPUs) and trains on its rows of every global batch;
DDP averages the gradients over the processes during `backward`, so every
process applies the same update. Keras's training step is kept, with the
model's forward pass going through the DDP wrapper, which is how DDP learns
which gradients to reduce.
"""

import contextlib
import os
import types

import keras

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE")
LAUNCH = "torchrun --nproc_per_node=N -m keras_msrnn.cli train RECIPE --data-parallel"


def launched():
    """Whether `torchrun` (or a launcher that sets its variables) started this process."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def active():
    """Whether a process group is running (inside `process_group()`)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


@contextlib.contextmanager
def process_group():
    """Joins the `torchrun` job's process group for the duration of the context."""
    import torch
    import torch.distributed as dist

    if not launched():
        raise ValueError(
            "On torch, data-parallel training runs one process per device under torchrun: "
            f"{LAUNCH}."
        )
    if active():
        yield
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        yield
        # Leave together: a process that tears its connections down while
        # another still writes its files makes gloo abort the other.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def rank():
    import torch.distributed as dist

    return dist.get_rank()


def world_size():
    import torch.distributed as dist

    return dist.get_world_size()


def any_process(flag):
    """True on every process if `flag` is true on any (for decisions all must share)."""
    import torch
    import torch.distributed as dist

    value = torch.tensor([int(bool(flag))])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def wrap(model):
    """Makes `model.fit` train through DDP: forward via the wrapper, gradients averaged.

    `static_graph`: the same weights take part in every step, and some
    never do (PredRNN++'s gradient highway outside its layer, as in the
    reference), which DDP learns once instead of searching every step.
    """
    import torch

    ddp = torch.nn.parallel.DistributedDataParallel(model, static_graph=True)
    # An instance attribute, not a module: the model must not own its own wrapper.
    object.__setattr__(model, "train_step", types.MethodType(_ddp_train_step(ddp), model))
    return model


def _ddp_train_step(ddp):
    """Keras's PyTorch `train_step` with the forward pass through `ddp`."""
    import torch

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = ddp(x, training=True)
        self.zero_grad()
        loss = self._compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
        )
        self._loss_tracker.update_state(loss, sample_weight=keras.tree.flatten(x)[0].shape[0])
        loss = self.optimizer.scale_loss(loss)
        loss.backward()  # DDP's hooks average the gradients over the processes here
        trainable_weights = self.trainable_weights[:]
        with torch.no_grad():
            self.optimizer.apply([v.value.grad for v in trainable_weights], trainable_weights)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    return train_step
