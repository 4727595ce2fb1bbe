"""The SFT loop shared by every method: assistant-token loss, atomic checkpoints, exact resume, provenance.

Determinism is what makes ``--resume`` exact: the data order of epoch e is a permutation seeded by (seed, e), the
learning rate is a pure function of the step, and a checkpoint stores the trainable tensors, the optimizer state and
the RNG state (dropout). Resuming from step k therefore replays steps k+1.. bit for bit on the same hardware.
Evaluation (``eval_data``) runs in eval mode without gradients: it draws no random numbers and changes no weight.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from safepeft import progress
from safepeft.errors import ConfigError, ResumeError, missing_dependency
from safepeft.finetune import FINETUNE_METHODS
from safepeft.finetune.base import IGNORE_INDEX, FinetuneMethod, MethodSpec, PrepareContext, collate
from safepeft.finetune.checkpoint import (
    Checkpoint,
    latest_checkpoint,
    optimizer_state,
    restore_optimizer,
    restore_rng,
    rng_state,
    save_checkpoint,
)
from safepeft.finetune.dataset import TrainData
from safepeft.finetune.loss import summed_loss
from safepeft.finetune.provenance import TRAIN_RECORD, TrainRecord, library_versions, now_utc
from safepeft.finetune.train_spec import TrainSpec
from safepeft.models.safety import check_finite
from safepeft.store import atomic_write_json

CHECKPOINTS = "checkpoints"
LOG_DIRS = {"tensorboard": "tensorboard", "wandb": "wandb"}
"""Sub-directory of the output that each --log-to backend writes to."""


@dataclass
class TrainResult:
    out_dir: Path
    record: TrainRecord
    model: Any
    """The trained model (method output attached to the base), in eval mode."""


def learning_rate(spec: TrainSpec, peak: float, step: int, total: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based) out of ``total``."""
    if step < spec.warmup_steps:
        return peak * (step + 1) / spec.warmup_steps
    if spec.schedule == "constant":
        return peak
    progress_ = (step - spec.warmup_steps) / max(1, total - spec.warmup_steps)
    if spec.schedule == "linear":
        return peak * (1.0 - progress_)
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress_))


def total_steps(spec: TrainSpec, n_examples: int) -> int:
    return spec.max_steps or max(1, math.ceil(spec.epochs * n_examples / (spec.batch_size * spec.grad_accum)))


def step_indices(step: int, per_step: int, n: int, seed: int, cache: dict[int, list[int]]) -> list[int]:
    """Example indices of optimizer step ``step``: a stream of per-epoch permutations seeded by (seed, epoch)."""
    out = []
    for position in range(step * per_step, (step + 1) * per_step):
        epoch = position // n
        if epoch not in cache:
            generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            cache[epoch] = torch.randperm(n, generator=generator).tolist()
        out.append(cache[epoch][position % n])
    return out


def train(loaded: Any, data: TrainData, spec: TrainSpec, method_spec: MethodSpec, out_dir: str | os.PathLike[str],
          *, resume: bool = False, overwrite: bool = False, show_progress: bool = True,
          eval_data: TrainData | None = None) -> TrainResult:
    """Fine-tune ``loaded`` on ``data`` and write the method's output + safepeft_train.json into ``out_dir``.

    With ``eval_data`` its loss is computed every ``spec.eval_steps`` steps and after the last one, shown in the
    progress line and recorded under ``extras.eval`` of the record.
    """
    method: FinetuneMethod = FINETUNE_METHODS.get(spec.method)
    if spec.load_in_4bit != bool(getattr(loaded.model, "is_loaded_in_4bit", False)):
        # The record and the run key say how the base was loaded: the flag must match the model it is given.
        state = "not in 4-bit" if spec.load_in_4bit else "in 4-bit"
        raise ConfigError(f"TrainSpec.load_in_4bit is {spec.load_in_4bit}, but the base model is {state}.",
                          "Load the base with safepeft.finetune.qlora.load_4bit exactly when load_in_4bit is set.")
    logger_class = metric_logger(spec.log_to)  # a missing library fails before any work
    out = Path(out_dir)
    key = run_key(loaded, data, spec, method_spec, eval_data)
    if _prepare_out_dir(out, key, resume, overwrite):
        record = TrainRecord.model_validate_json((out / TRAIN_RECORD).read_text(encoding="utf-8"))
        return TrainResult(out, record, method.load(loaded.model, out))
    ctx = PrepareContext(loaded=loaded, examples=data.examples, seed=spec.seed, batch_size=spec.batch_size)
    torch.manual_seed(spec.seed)
    model = method.prepare(ctx, method_spec)
    named = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if not named:
        raise ConfigError(f"Method {spec.method!r} left no trainable parameters.", "Check the target modules.")
    peak = spec.learning_rate or method.default_learning_rate
    optimizer = torch.optim.AdamW(list(named.values()), lr=peak, weight_decay=spec.weight_decay)
    total = total_steps(spec, len(data.examples))
    session = _Session(start=0, losses=[], wall=0.0, resumed_from=[], evals=[])
    checkpoint = latest_checkpoint(out / CHECKPOINTS) if resume else None
    if checkpoint is not None:
        session = _restore(method, model, optimizer, named, checkpoint, key)
    else:
        torch.manual_seed(spec.seed)
    started = time.perf_counter()
    pad = loaded.tokenizer.pad_token_id or 0
    logger = logger_class(out, spec, session.start) if logger_class is not None else None
    monitor = _Monitor(spec, eval_data, logger, pad)
    try:
        _loop(model, method, optimizer, named, data, spec, peak, total, session, key, out, started, pad,
              show_progress, monitor)
    finally:
        if logger is not None:
            logger.close()
    model.eval()
    wall = session.wall + time.perf_counter() - started
    record = _record(loaded, data, spec, method_spec, method, ctx, peak, total, session, wall, eval_data)
    _write_output(out, method, model, ctx, method_spec, record)
    return TrainResult(out, record, model)


@dataclass
class _Session:
    start: int
    losses: list[float]
    wall: float
    resumed_from: list[int]
    evals: list[dict[str, float]]
    """Eval losses so far: ``{"step": n, "loss": x}`` after optimizer step n."""


def eval_loss(model: Any, data: TrainData, batch_size: int, pad: int) -> float:
    """Mean assistant-token cross-entropy over all of ``data``, weighted by tokens like the train loss."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()  # no dropout: the value is reproducible and no random numbers are drawn
    total, tokens = 0.0, 0
    try:
        with torch.no_grad():
            for i in range(0, len(data.examples), batch_size):
                batch = collate(data.examples[i : i + batch_size], pad)
                loss, n = summed_loss(model, {k: v.to(device) for k, v in batch.items()})
                total, tokens = total + float(loss), tokens + n
    finally:
        model.train(was_training)
    return total / tokens


@dataclass
class _Monitor:
    """What happens after each optimizer step besides training: eval loss, metric logging, progress fields."""

    spec: TrainSpec
    eval_data: TrainData | None
    logger: Any
    pad: int

    def after_step(self, model: Any, done: int, total: int, loss: float, lr: float,
                   evals: list[dict[str, float]]) -> dict[str, float]:
        metrics = {"train/loss": loss, "train/learning_rate": lr}
        if self.eval_data is not None and (done % self.spec.eval_steps == 0 or done == total):
            evals.append({"step": done, "loss": eval_loss(model, self.eval_data, self.spec.batch_size, self.pad)})
            metrics["eval/loss"] = evals[-1]["loss"]
        if self.logger is not None:
            self.logger.log(metrics, done)
        return {"loss": loss, "lr": lr} | ({"eval_loss": evals[-1]["loss"]} if evals else {})


def _loop(model: Any, method: FinetuneMethod, optimizer: torch.optim.Optimizer, named: dict[str, Any],
          data: TrainData, spec: TrainSpec, peak: float, total: int, session: _Session, key: str, out: Path,
          started: float, pad: int, show_progress: bool, monitor: _Monitor) -> None:
    device = next(model.parameters()).device
    names = {p: name for name, p in named.items()}
    orders: dict[int, list[int]] = {}
    per_step = spec.batch_size * spec.grad_accum
    label = f"train {spec.method}" + (f" (from step {session.start})" if session.start else "")
    model.train()
    with progress.bar(label, total - session.start, show_progress) as advance:
        for step in range(session.start, total):
            chosen = [data.examples[i] for i in step_indices(step, per_step, len(data.examples), spec.seed, orders)]
            micro = [collate(chosen[i : i + spec.batch_size], pad) for i in range(0, len(chosen), spec.batch_size)]
            tokens = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in micro)
            step_loss = 0.0
            for batch in micro:
                loss, _ = summed_loss(model, {k: v.to(device) for k, v in batch.items()})
                (loss / tokens).backward()
                step_loss += float(loss.detach()) / tokens
            if spec.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(list(named.values()), spec.max_grad_norm)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(spec, peak, step, total)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            session.losses.append(step_loss)
            lr = optimizer.param_groups[0]["lr"]
            advance(1, **monitor.after_step(model, step + 1, total, step_loss, lr, session.evals))
            if (step + 1) % spec.checkpoint_every == 0 and step + 1 < total:
                wall = session.wall + time.perf_counter() - started
                state = {"run_key": key, "losses": session.losses, "wall_time_s": wall,
                         "resumed_from": session.resumed_from, "evals": session.evals}
                save_checkpoint(out / CHECKPOINTS, Checkpoint(
                    step + 1, method.trainable_state(model), optimizer_state(optimizer, names), rng_state(), state))


def _restore(method: FinetuneMethod, model: Any, optimizer: torch.optim.Optimizer, named: dict[str, Any],
             checkpoint: Checkpoint, key: str) -> _Session:
    if checkpoint.state.get("run_key") != key:
        raise ResumeError(
            f"The checkpoint at step {checkpoint.step} was made with a different model, data or settings.",
            "Re-run with exactly the same options, or pass --overwrite to start over.",
        )
    method.load_trainable_state(model, checkpoint.trainable)
    restore_optimizer(optimizer, named, checkpoint.optimizer)
    restore_rng(checkpoint.rng)
    resumed = [*checkpoint.state.get("resumed_from", []), checkpoint.step]
    return _Session(checkpoint.step, list(checkpoint.state["losses"]), float(checkpoint.state["wall_time_s"]), resumed,
                    list(checkpoint.state.get("evals", [])))


def run_key(loaded: Any, data: TrainData, spec: TrainSpec, method_spec: MethodSpec,
            eval_data: TrainData | None = None) -> str:
    """Identity of a training run: what must match for a checkpoint or output to be reused."""
    # Logging and eval settings do not change the weights; eval settings still key the run when there is eval
    # data, because the eval losses carried over by a resume must all come from the same data and schedule.
    parts: dict[str, Any] = {
        "base": loaded.fingerprint, "dtype": loaded.dtype, "data": data.data_hash,
        # load_in_4bit only when set: runs from before the flag existed keep their keys (and stay resumable).
        "train": spec.model_dump(exclude={"checkpoint_every", "eval_steps", "log_to"}
                                 | (set() if spec.load_in_4bit else {"load_in_4bit"})),
        "method": method_spec.model_dump(mode="json"),
    }
    if eval_data is not None:
        parts["eval"] = {"data": eval_data.data_hash, "every": spec.eval_steps}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _prepare_out_dir(out: Path, key: str, resume: bool, overwrite: bool) -> bool:
    """Check/clear ``out``; True when it already holds this exact, finished run (and resume was asked)."""
    # Logs alone are what a run killed before its first checkpoint leaves: it starts again from step 0.
    if not out.exists() or all(p.name in LOG_DIRS.values() and p.is_dir() for p in out.iterdir()):
        out.mkdir(parents=True, exist_ok=True)
        return False
    ours = (out / TRAIN_RECORD).is_file() or (out / CHECKPOINTS).is_dir()
    if overwrite and ours:
        shutil.rmtree(out)
        out.mkdir(parents=True)
        return False
    if not ours:
        raise ConfigError(f"Output directory {out} is not empty and was not written by safepeft train.",
                          "Choose a new --out directory.")
    if not resume:
        raise ConfigError(f"Output directory {out} already holds a training run.",
                          "Pass --resume to continue it, or --overwrite to start over.")
    if (out / TRAIN_RECORD).is_file():
        previous = json.loads((out / TRAIN_RECORD).read_text(encoding="utf-8"))
        if previous.get("extras", {}).get("run_key") != key:
            raise ResumeError(f"{out} holds a finished run with different model, data or settings.",
                              "Use another --out, or --overwrite to replace it.")
        return True
    return False


def _record(loaded: Any, data: TrainData, spec: TrainSpec, method_spec: MethodSpec, method: FinetuneMethod,
            ctx: PrepareContext, peak: float, total: int, session: _Session, wall: float,
            eval_data: TrainData | None = None) -> TrainRecord:
    hyper = spec.model_dump() | {"learning_rate": peak, "total_steps": total, "dtype": loaded.dtype,
                                 "device": loaded.device}
    extras = {"run_key": run_key(loaded, data, spec, method_spec, eval_data), **ctx.extras}
    if eval_data is not None:
        extras["eval"] = {"data": eval_data.summary(), "every": spec.eval_steps,
                          "final_loss": session.evals[-1]["loss"], "losses": session.evals}
    return TrainRecord(
        method=method.name, method_options=method_spec.model_dump(mode="json"), hyperparameters=hyper,
        seed=spec.seed,
        base_model={"spec": loaded.spec, "source": loaded.source.kind, "fingerprint": loaded.fingerprint},
        data=data.summary(), steps=total, final_loss=session.losses[-1], losses=session.losses,
        wall_time_s=round(wall, 3), resumed_from=session.resumed_from, versions=library_versions(),
        created_at=now_utc(), extras=extras,
    )


def base_name(source: Any) -> str:
    """What to load the base from: the hub id, the absolute path of a directory or .gguf, or ``embedded``."""
    if source.kind == "hub" or not Path(source.spec).expanduser().exists():  # `embedded` and hub ids
        return source.spec
    return str(Path(source.spec).expanduser().resolve())


def _record_real_base(config_file: Path, source: Any) -> None:
    """PEFT writes the loaded model's name_or_path, a de-quantised cache folder for GGUF bases; name the real base."""
    if not config_file.is_file():
        return
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_name(source)
    atomic_write_json(config_file, config)


def _write_output(out: Path, method: FinetuneMethod, model: Any, ctx: PrepareContext, method_spec: MethodSpec,
                  record: TrainRecord) -> None:
    """Method files first (each renamed into place), the record last: its presence marks a finished run."""
    check_finite(((n, p.detach()) for n, p in model.named_parameters() if p.requires_grad), "trained adapter",
                 "Training diverged (NaN or Inf weights); lower --learning-rate or check the data. Nothing was "
                 "written.")
    for stale in out.glob(".final.*"):  # left by a run killed while writing its output
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".final."))
    try:
        method.save(model, tmp, ctx, method_spec)
        _record_real_base(tmp / "adapter_config.json", ctx.loaded.source)
        for path in sorted(tmp.iterdir()):
            target = out / path.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(path, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    atomic_write_json(out / TRAIN_RECORD, record.model_dump(mode="json"))
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)


def metric_logger(kind: str | None) -> Any:
    """The ``--log-to`` backend class, once its library is known to import (None: no metric logging)."""
    if kind is None:
        return None
    backend = {"tensorboard": _TensorBoard, "wandb": _Wandb}[kind]
    backend.library()
    return backend


class _TensorBoard:
    """torch's own SummaryWriter, writing event files to ``OUT/tensorboard``."""

    @staticmethod
    def library() -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch ships the writer, but it needs the separate `tensorboard` package
            raise missing_dependency("tensorboard", "--log-to tensorboard", "'safepeft[tensorboard]'") from exc
        return SummaryWriter

    def __init__(self, out: Path, spec: TrainSpec, start: int) -> None:
        # A resumed run re-does the steps after its checkpoint: purge what the killed session logged for them.
        self.writer = self.library()(log_dir=str(out / LOG_DIRS["tensorboard"]), purge_step=start or None)

    def log(self, metrics: dict[str, float], step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        self.writer.close()


class _Wandb:
    """A Weights & Biases run through ``wandb.init``/``log``; credentials are left to wandb's own login and env."""

    @staticmethod
    def library() -> Any:
        try:
            import wandb
        except ImportError as exc:
            raise missing_dependency("wandb", "--log-to wandb", "'safepeft[wandb]'") from exc
        return wandb

    def __init__(self, out: Path, spec: TrainSpec, start: int) -> None:
        # Offline unless the user chose a mode: logging a run must not upload it by surprise.
        mode = None if os.environ.get("WANDB_MODE") else "offline"
        directory = None if os.environ.get("WANDB_DIR") else str(out)
        self.run = self.library().init(project=os.environ.get("WANDB_PROJECT", "safepeft"), name=out.resolve().name,
                                       dir=directory, mode=mode, config=spec.model_dump())

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def close(self) -> None:
        self.run.finish()
