"""The per-worker training loop Ray Train runs (`train_loop_per_worker`).

Plain PyTorch + DeepSpeed inside; Ray Train supplies the process group, the device, the
checkpoint to resume from (`ray.train.get_checkpoint`) and the place to report to.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import ray.train
import torch
import torch.distributed as dist
from ray.train.torch import get_device
from soma_models.v1.torch import Model

from soma_ray.protocol.constants import MAX_SEQ_LEN
from soma_ray.scoring.sigreg import NoiseBank
from soma_ray.training.config import TrainConfig
from soma_ray.training.data import SequenceStream, heldout_samples
from soma_ray.training.engine import initialize
from soma_ray.training.flops import mfu, peak_tflops, training_flops_per_token
from soma_ray.training.heldout import HeldoutScore, eval_model, score_heldout_distributed
from soma_ray.training.objective import ScoringObjective, random_projection
from soma_ray.training.progress import Throughput, TrainMetrics, log, progress_line
from soma_ray.training.state import DEEPSPEED_TAG, TrainState
from soma_ray.training.weights import full_fp32_state_dict, load_canonical, model_config


class Worker:
    """One rank's view of a run: engine, data, held-out set, state."""

    def __init__(self, config: TrainConfig, run: str, warm_start: bytes | None) -> None:
        context = ray.train.get_context()
        self.config, self.training, self.run = config, config.training, run
        self.rank, self.world = context.get_world_rank(), context.get_world_size()
        self.device = get_device()
        arch = config.architecture
        torch.manual_seed(self.training.seed)  # identical initial weights on every rank
        if warm_start is not None:
            model = load_canonical(warm_start, arch, self.training.dropout)
        else:
            model = Model(model_config(arch, self.training.dropout))
        objective = ScoringObjective(model, checkpoint_layers=self.training.activation_checkpointing)
        self.engine = initialize(objective, self.training, self.device)
        self.eval_template = Model(model_config(arch))
        self.heldout = heldout_samples(config.data, config.heldout)
        if not self.heldout:
            raise ValueError(
                "the held-out set is empty: lower heldout.every, or give heldout.data a separate source"
            )
        self.state = TrainState(run=run)
        self.scorer_noise = NoiseBank(arch.embedding_dim, self.device, seed=0)
        self.flops_per_token = training_flops_per_token(arch.embedding_dim, arch.pwff_hidden_dim, arch.num_layers)
        device_name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        self.peak = self.training.peak_tflops or peak_tflops(device_name, self.training.precision)
        self.metrics = TrainMetrics(run) if self.rank == 0 else None
        self.history: list[dict[str, Any]] = []  # every report of this attempt (rank 0's is returned)

    # -- checkpoints ----------------------------------------------------------------------

    def restore(self) -> None:
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return
        with checkpoint.as_directory() as folder:
            self.engine.load_checkpoint(folder, tag=DEEPSPEED_TAG)
            self.state = TrainState.read(Path(folder))
        if self.rank == 0:
            log.info("[%s] resumed at step %d from %s", self.run, self.state.step, checkpoint.path)

    def save_and_report(self, metrics: dict[str, Any]) -> None:
        folder = Path(tempfile.mkdtemp(prefix="soma-ray-ckpt-"))
        try:
            self.engine.save_checkpoint(str(folder), tag=DEEPSPEED_TAG)
            if self.rank == 0:
                self.state.write(folder)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(folder)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # -- the loop -------------------------------------------------------------------------

    def projection(self, micro: int) -> torch.Tensor:
        if self.training.sigreg_noise == "scorer":
            return self.scorer_noise.get(0)  # samples up to 16 KiB are scored with batch index 0
        generator = torch.Generator(device=self.device).manual_seed(
            hash((self.training.seed, self.state.step, micro, self.rank)) & 0x7FFF_FFFF_FFFF_FFFF
        )
        return random_projection(self.config.architecture.embedding_dim, generator, self.device)

    def evaluate(self) -> HeldoutScore:
        weights = full_fp32_state_dict(self.engine)  # collective
        model = eval_model(self.eval_template, weights, self.device)
        return score_heldout_distributed(model, self.heldout, self.rank, self.world)

    def checkpoint_due(self, last_checkpoint: float) -> bool:
        """Every N steps, at the end, or after T minutes. The clock is read only at log steps,
        where rank 0 broadcasts its decision (one host sync per log window, not per step)."""
        t = self.training
        if self.state.step % t.checkpoint_every == 0 or self.state.step == t.max_steps:
            return True
        if self.state.step % t.log_every:
            return False
        flag = torch.tensor([int(time.monotonic() - last_checkpoint >= 60 * t.checkpoint_minutes)], device=self.device)
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    def train(self) -> None:
        t = self.training
        stream = SequenceStream(
            self.config.data, self.config.heldout, rank=self.rank, world_size=self.world, seed=t.seed,
            shuffle_buffer=t.shuffle_buffer, micro_batch=t.micro_batch,
        ).batches(skip=self.state.step * t.grad_accum)
        tokens_per_step = self.world * t.grad_accum * t.micro_batch * MAX_SEQ_LEN
        window = torch.zeros(3, device=self.device)  # loss, ce, sigreg summed over micro-steps
        window_steps = 0
        throughput = Throughput()
        last_checkpoint = time.monotonic()
        while self.state.step < t.max_steps:
            for micro in range(t.grad_accum):
                batch = next(stream).to(self.device)
                loss, ce, sig = self.engine(batch.tokens, batch.positions, batch.targets, self.projection(micro))
                self.engine.backward(loss)
                self.engine.step()
                window += torch.stack([loss.detach().float(), ce.float(), sig.float()]) / t.grad_accum
            self.state.step += 1
            self.state.tokens += tokens_per_step
            throughput.add(tokens_per_step)
            window_steps += 1
            checkpoint = self.checkpoint_due(last_checkpoint)
            evaluate = checkpoint or self.state.step % t.eval_every == 0
            if not (checkpoint or evaluate or self.state.step % t.log_every == 0):
                continue
            dist.all_reduce(window)
            loss_mean, ce_mean, sig_mean = (window / (self.world * window_steps)).tolist()
            new_tokens = tokens_per_step * window_steps
            window.zero_()
            window_steps = 0
            rate = throughput.read()
            metrics: dict[str, Any] = {
                "step": self.state.step, "loss": loss_mean, "ce": ce_mean, "sigreg": sig_mean,
                "lr": self.engine.get_lr()[0], "tokens": self.state.tokens, "tokens_per_second": rate,
                "mfu": mfu(rate, self.flops_per_token, self.world, self.peak),
            }
            if evaluate:
                score = self.evaluate()
                self.state.heldout_loss = score.loss
                self.state.best_heldout_loss = min(self.state.best_heldout_loss, score.loss)
                metrics["heldout_loss"] = score.loss
                throughput.read()  # evaluation time is not training throughput
            if self.rank == 0:
                log.info("[%s] %s", self.run, progress_line(metrics, t.max_steps))
                assert self.metrics is not None
                self.metrics.record(metrics, new_tokens)
            metrics = {k: v for k, v in metrics.items() if v is not None}
            self.history.append(metrics)
            if checkpoint:
                self.save_and_report(metrics)
                last_checkpoint = time.monotonic()
                throughput.read()
            else:
                ray.train.report(metrics)


def train_loop_per_worker(loop_config: dict[str, Any]) -> list[dict[str, Any]]:
    """Train; returns this attempt's reported metrics (Ray returns rank 0's as `return_value`)."""
    config: TrainConfig = loop_config["config"]
    warm = loop_config.get("warm_start")
    warm_start = ray.get(warm) if isinstance(warm, ray.ObjectRef) else warm
    worker = Worker(config, loop_config["run"], warm_start)
    worker.restore()
    worker.train()
    return worker.history

