"""The training loop of ``archdsl train``: spec + ImageFolder -> trained, evaluated checkpoints.

One process, or one process per device under ``torchrun`` (DDP, or FSDP with ``--fsdp``); rank 0
alone logs and writes the run folder. Data order, augmentation and dropout are a function of
(seed, epoch, rank): every epoch reseeds them, so a run resumed from ``last.pt`` continues exactly
as the uninterrupted run would (bit-identical weights on the CPU).

Errors are :class:`~archdsl.diagnostics.DiagnosticError` (codes E370-E379) on the command line:

E370 CUDA requested but not available; E371 out of memory (hint: a smaller ``--batch``);
E372 resume checkpoint from another spec (both hashes named); E373 resume checkpoint missing or
unreadable; E374 the spec's output width cannot follow the data's class count; E375 FSDP not
possible here; E376 a bad option value; E378 the run folder cannot be written; E379 PyTorch missing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, DiagnosticError, Loc
from .config import TrainConfig
from .progress import Progress

CMDLINE = Loc("<command line>", 1, 1)
#: Exit status after Ctrl-C (128 + SIGINT), once last.pt is written.
EXIT_INTERRUPTED = 130


def _error(code: str, message: str, hint: str = "", notes: tuple[str, ...] = (), loc: Loc = CMDLINE) -> DiagnosticError:
    return DiagnosticError(Diagnostic(code, message, loc, hint=hint, notes=notes))


def note(text: str) -> None:
    """A status line on stderr (``-q`` drops it)."""
    from .. import cli

    cli.status(f"note: {text}")


# ----------------------------------------------------------------------------------- processes


@dataclass
class Dist:
    """This process's place in the job: rank, world size, local rank (one process: 0, 1, 0)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    launched: bool = False  # started by torchrun (RANK and WORLD_SIZE in the environment)

    @classmethod
    def from_env(cls) -> Dist:
        """Read torchrun's environment variables."""
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
            return cls(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                       int(os.environ.get("LOCAL_RANK", "0")), True)
        return cls()

    @property
    def main(self) -> bool:
        """Rank 0: the process that logs and writes the run folder."""
        return self.rank == 0


def _device(cfg: TrainConfig, dist: Dist):
    import torch

    want = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if want not in ("cpu", "cuda"):
        raise _error("E376", f"--device {want}: expected cpu or cuda")
    if want == "cuda":
        if not torch.cuda.is_available():
            raise _error("E370", "--device cuda: CUDA is not available here",
                         hint="run on the CPU with --device cpu (or leave --device out)",
                         notes=(f"torch {torch.__version__} (CUDA build: {torch.version.cuda or 'no'}) "
                                f"sees no CUDA device",))
        if dist.local_rank >= torch.cuda.device_count():
            raise _error("E370", f"local rank {dist.local_rank} has no GPU ({torch.cuda.device_count()} visible)",
                         hint="start at most one process per GPU (torchrun --nproc_per_node)")
        torch.cuda.set_device(dist.local_rank)
        return torch.device("cuda", dist.local_rank)
    return torch.device("cpu")


def _init_group(dist: Dist, device) -> None:
    import torch.distributed as tdist

    if dist.launched and not tdist.is_initialized():
        tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")


# ----------------------------------------------------------------------------------- the spec


@dataclass
class SpecInfo:
    """The analyzed spec with ``num_classes`` set from the data, its text and its hash."""

    loaded: Any
    source: str
    hash: str
    params: dict[str, Any]


def spec_hash(source: str, params: dict[str, Any]) -> str:
    """sha256 of the spec's text and its parameter values (what a checkpoint belongs to)."""
    blob = source + "\n" + json.dumps({k: repr(v) for k, v in sorted(params.items())}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _load(cfg: TrainConfig, params: dict[str, Any]):
    from ..backends.runtime import load_spec

    return load_spec(cfg.spec, search_paths=cfg.search_paths, **params)


def load_for_classes(cfg: TrainConfig, loaded, classes: int, main: bool = True) -> Any:
    """Re-analyze the spec with ``num_classes`` = the data's class count (a note from the ``main``
    process when that changes the spec's default); E374 when the spec cannot follow the data."""
    declared = loaded.params.get("num_classes")
    if "num_classes" in loaded.params:
        if "num_classes" in cfg.params and declared != classes:
            raise _error("E374", f"-p num_classes={declared}, but the data has {classes} classes",
                         hint="leave -p num_classes out: it follows the data")
        if declared != classes:
            if main:
                note(f"num_classes = {classes} (the data's class folders), not the spec's default {declared}")
            return _load(cfg, {**cfg.params, "num_classes": classes})
        return loaded
    graph = loaded.graph
    out = graph.node(graph.main_output).get("shape") if graph.main_output is not None else None
    width = out[0] if out and len(out) == 1 else None
    if width != classes:
        raise _error("E374", f"the spec's output is {'x'.join(map(str, out or ())) or 'unknown'} wide, but the "
                     f"data has {classes} classes", loc=Loc(cfg.spec, 1, 1),
                     hint="give the network a num_classes parameter and use it in the classifier "
                          "(network NAME(num_classes = 10))")
    return loaded


def _spec_info(cfg: TrainConfig, loaded) -> SpecInfo:
    source = Path(cfg.spec).read_text(encoding="utf-8", errors="replace")
    params = dict(loaded.params)
    return SpecInfo(loaded, source, spec_hash(source, params), params)


# ----------------------------------------------------------------------------------- the model


def param_groups(model, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weights of rank >= 2 (convs, linears); none on norm weights and biases."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(cfg: TrainConfig, model):
    """SGD (momentum, nesterov) or AdamW over :func:`param_groups`."""
    import torch

    groups = param_groups(model, cfg.decay)
    if cfg.opt == "sgd":
        return torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.opt == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.learning_rate)
    raise _error("E376", f"--opt {cfg.opt}: expected sgd or adamw")


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup over ``warmup`` steps, then a cosine from 1 to 0 at ``total`` steps."""
    if step < warmup:
        return (step + 1) / warmup
    rest = max(total - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, rest) / rest))


def make_scheduler(optimizer, warmup: int, total: int):
    """A per-step :class:`torch.optim.lr_scheduler.LambdaLR` with :func:`lr_factor`."""
    import functools

    import torch

    return torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(lr_factor, warmup=warmup, total=total))


class EMA:
    """Exponential moving average of a model's weights and buffers: ema = decay*ema + (1-decay)*w."""

    def __init__(self, model, decay: float) -> None:
        import copy

        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def update(self, model) -> None:
        """One step of the average (after each optimizer step)."""
        import torch

        with torch.no_grad():
            for e, w in zip(self.module.state_dict().values(), model.state_dict().values(), strict=True):
                if e.dtype.is_floating_point:
                    e.lerp_(w.detach(), 1.0 - self.decay)
                else:
                    e.copy_(w)


# ----------------------------------------------------------------------------------- the job


@dataclass
class State:
    """Where training stands: completed epochs, optimizer steps, steps into the current epoch."""

    epoch: int = 0
    step: int = 0
    batch_in_epoch: int = 0
    best_top1: float = -1.0
    rng: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class Job:
    """One training job, set up by :func:`run`."""

    def __init__(self, cfg: TrainConfig, dist: Dist) -> None:
        import torch

        self.cfg, self.dist, self.torch = cfg, dist, torch
        self.out = Path(cfg.out)
        self.state = State()
        self.device = _device(cfg, dist)
        _init_group(dist, self.device)
        self._setup_data_and_model()

    # -- setup
    def _setup_data_and_model(self) -> None:
        from . import data as train_data

        cfg, torch = self.cfg, self.torch
        _check_options(cfg, self.dist, self.device)
        train_data.require_vision()
        loaded = _load(cfg, cfg.params)
        if self.dist.main:
            for w in loaded.warnings:
                if w.severity == "warning":
                    from .. import cli

                    cli.print_diagnostic(w, loaded.sources)
        self.data = train_data.open_imagefolder(cfg.data, tuple(loaded.graph.input_shape), augment=True)
        if self.data.skipped and self.dist.main:
            shown = ", ".join(self.data.skipped[:3]) + (" ..." if len(self.data.skipped) > 3 else "")
            note(f"skipped {len(self.data.skipped)} unreadable image{'s' if len(self.data.skipped) != 1 else ''}: {shown}")
        self.spec = _spec_info(cfg, load_for_classes(cfg, loaded, len(self.data.classes), self.dist.main))
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.model = self.spec.loaded.build().to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        from ..backends.runtime import generated_module

        self.loss_fn = generated_module(self.model).loss_fn
        self.train_loader, self.val_loader, self.sampler = train_data.make_loaders(
            self.data, cfg.batch, cfg.workers, self.dist.launched, cfg.seed)
        self.steps_per_epoch = len(self.train_loader)
        if self.steps_per_epoch == 0:
            raise _error("E376", f"--batch {cfg.batch}: no full training step per epoch", hint="use a smaller --batch")
        self.ema = EMA(self.model, cfg.ema) if cfg.ema is not None else None
        self.wrapped = self._wrap(self.model)
        self.optimizer = make_optimizer(cfg, self.model)
        total = cfg.epochs * self.steps_per_epoch
        warmup = min(int(round(cfg.warmup_epochs * self.steps_per_epoch)), total)
        self.scheduler = make_scheduler(self.optimizer, warmup, total)
        self.scaler = (torch.amp.GradScaler("cuda") if cfg.amp == "fp16" and self.device.type == "cuda" else None)
        self.forward = torch.compile(self.wrapped) if cfg.compile else self.wrapped
        if cfg.resume:
            self._resume(cfg.resume)

    def _wrap(self, model):
        if self.cfg.fsdp:
            return _fsdp(model, self.device)
        if self.dist.launched:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            return DistributedDataParallel(model, device_ids=ids)
        return model

    # -- the epochs
    def train(self) -> int:
        """Train the remaining epochs; returns the exit status."""
        cfg = self.cfg
        progress = Progress(cfg.epochs, enabled=self.dist.main, bar=cfg.progress)
        if self.dist.main:
            self._prepare_run_folder()
        try:
            while self.state.epoch < min(cfg.epochs, cfg.stop_after or cfg.epochs):
                self._epoch(progress)
        except KeyboardInterrupt:
            progress.close()
            return self._interrupted()
        except Exception as exc:
            progress.close()
            if _is_oom(exc):
                raise _error("E371", f"out of memory at batch size {cfg.batch} on {self.device}",
                             hint=f"use a smaller --batch (e.g. --batch {max(1, cfg.batch // 2)})",
                             notes=(str(exc).splitlines()[0][:200],)) from None
            raise
        progress.close()
        if self.dist.launched:  # no rank leaves (and tears down gloo's sockets) while rank 0 still writes
            import torch.distributed as tdist

            tdist.barrier()
        if self.dist.main and self.state.epoch < cfg.epochs:
            note(f"stopped after epoch {self.state.epoch} of {cfg.epochs} (--stop-after): continue with "
                 f"--resume {self.out / 'last.pt'}")
        elif self.dist.main:
            best = self.state.best_top1
            note(f"done: {cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}, best val_top1 {best:.3f}; wrote {self.out / 'last.pt'}, "
                 f"{self.out / 'best.pt'}, {self.out / 'metrics.jsonl'}, {self.out / 'curves.png'}")
        return 0

    def _epoch(self, progress: Progress) -> None:
        torch, st = self.torch, self.state
        start = time.perf_counter()
        self._seed_epoch(st.epoch)
        self.wrapped.train()
        progress.start_epoch(st.epoch + 1, self.steps_per_epoch)
        batches = iter(self.train_loader)
        if st.batch_in_epoch:  # resumed mid-epoch: replay the order, then the saved generators
            for _ in range(st.batch_in_epoch):
                next(batches)
            _set_rng(st.rng)
        sums = torch.zeros(2, dtype=torch.float64)  # loss * images, images (this process)
        for x, y in batches:
            loss = self._step(x, y)
            sums += torch.tensor([loss.item() * len(y), len(y)], dtype=torch.float64)
            st.step += 1
            st.batch_in_epoch += 1
            progress.step(loss.item(), len(y))
        train_seconds = time.perf_counter() - start
        val = self._evaluate()
        totals = self._all_reduce(torch.cat([sums, val]))
        st.epoch += 1
        st.batch_in_epoch = 0
        metrics = {"epoch": st.epoch, "train_loss": float(totals[0] / max(totals[1], 1)),
                   "val_loss": float(totals[2] / max(totals[5], 1)),
                   "val_top1": float(totals[3] / max(totals[5], 1)), "val_top5": float(totals[4] / max(totals[5], 1)),
                   "lr": float(self.scheduler.get_last_lr()[0]),
                   "img_per_s": float(totals[1] / max(train_seconds, 1e-9)),
                   "seconds": time.perf_counter() - start}
        st.history.append(metrics)
        self._end_epoch(metrics)
        progress.end_epoch(metrics)

    def _step(self, x, y):
        x, y = self._to_device(x, y)
        with self._autocast():
            loss = self.loss_fn(self.forward(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return loss.detach().float()

    def _evaluate(self):
        """Sums over this process's validation images: loss, top-1 hits, top-5 hits, images."""
        torch = self.torch
        import torch.nn.functional as F

        model = self.ema.module if self.ema is not None else self.forward
        model.eval()
        sums = torch.zeros(4, dtype=torch.float64)
        k = min(5, len(self.data.classes))
        with torch.no_grad():
            for x, y in self.val_loader:
                x, y = self._to_device(x, y)
                with self._autocast():
                    out = model(x)
                out = out.float()
                top = out.topk(k, dim=1).indices
                hits = top == y[:, None]
                sums += torch.tensor([F.cross_entropy(out, y, reduction="sum").item(), hits[:, 0].sum().item(),
                                      hits.any(dim=1).sum().item(), len(y)], dtype=torch.float64)
        return sums

    def _all_reduce(self, t):
        if not self.dist.launched:
            return t
        import torch.distributed as tdist

        dev = self.device if self.device.type == "cuda" else t.device
        t = t.to(dev)
        tdist.all_reduce(t)
        return t.cpu()

    def _to_device(self, x, y):
        torch = self.torch
        x = x.to(self.device, non_blocking=True)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def _autocast(self):
        import contextlib

        if self.cfg.amp is None:
            return contextlib.nullcontext()
        dtype = self.torch.bfloat16 if self.cfg.amp == "bf16" else self.torch.float16
        return self.torch.autocast(self.device.type, dtype=dtype)

    def _seed_epoch(self, epoch: int) -> None:
        """Data order, augmentation and dropout of ``epoch`` depend on (seed, epoch, rank) only."""
        seed = (self.cfg.seed * 1_000_003 + epoch * 7919 + self.dist.rank) % (2**63)
        self.torch.manual_seed(seed)
        random.seed(seed)
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        generator = getattr(self.train_loader, "generator", None)
        if generator is not None:
            generator.manual_seed(seed)

    # -- the run folder
    def _prepare_run_folder(self) -> None:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            _copy_spec(self.cfg.spec, self.spec.loaded.files, self.out)
            kept = [json.dumps(m) for m in self.state.history]
            (self.out / "metrics.jsonl").write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        except OSError as exc:
            raise _error("E378", f"cannot write the run folder {self.out}: {exc.strerror or exc}") from None

    def _end_epoch(self, metrics: dict[str, Any]) -> None:
        improved = metrics["val_top1"] > self.state.best_top1
        if improved:
            self.state.best_top1 = metrics["val_top1"]
        checkpoint = self.checkpoint()  # collective under FSDP: every rank takes part
        if not self.dist.main:
            return
        try:
            with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(metrics) + "\n")
            _save(checkpoint, self.out / "last.pt")
            if improved:
                _save(checkpoint, self.out / "best.pt")
            from .curves import draw_curves

            draw_curves(self.state.history, str(self.out / "curves.png"))
        except OSError as exc:
            raise _error("E378", f"cannot write the run folder {self.out}: {exc.strerror or exc}") from None

    def checkpoint(self) -> dict[str, Any]:
        """Everything a resume needs, plus the spec's source, hash and classes."""
        model_sd, optim_sd = self._states()
        st = self.state
        ckpt = {"model": model_sd, "optimizer": optim_sd, "scheduler": self.scheduler.state_dict(),
                "epoch": st.epoch, "step": st.step, "batch_in_epoch": st.batch_in_epoch,
                "best_top1": st.best_top1, "history": list(st.history),
                "spec_path": self.cfg.spec, "spec_source": self.spec.source, "spec_hash": self.spec.hash,
                "params": {k: v for k, v in self.spec.params.items() if isinstance(v, (int, float, str, bool))},
                "classes": list(self.data.classes), "world_size": self.dist.world, "rng": _get_rng(),
                "config": {k: v for k, v in asdict(self.cfg).items() if k != "params"}}
        if self.ema is not None:
            ckpt["ema"] = self.ema.module.state_dict()
        if self.scaler is not None:
            ckpt["scaler"] = self.scaler.state_dict()
        return ckpt

    def _states(self):
        if self.cfg.fsdp:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

            opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
            return get_state_dict(self.model, self.optimizer, options=opts)
        return self.model.state_dict(), self.optimizer.state_dict()

    def _interrupted(self) -> int:
        if self.dist.main and not self.cfg.fsdp:
            path = self.out / "last.pt"
            _save(self.checkpoint(), path)
            note(f"interrupted in epoch {self.state.epoch + 1} after step {self.state.step}: wrote {path}; "
                 f"continue with --resume {path}")
        elif self.dist.main:
            note(f"interrupted in epoch {self.state.epoch + 1}: {self.out / 'last.pt'} holds the last finished epoch")
        return EXIT_INTERRUPTED

    # -- resume
    def _resume(self, path: str) -> None:
        ckpt = load_checkpoint(path)
        if ckpt.get("spec_hash") != self.spec.hash:
            raise _error("E372", f"{path} was trained from another spec: its hash is "
                         f"{str(ckpt.get('spec_hash'))[:16]}, {self.cfg.spec} (with these parameters) has "
                         f"{self.spec.hash[:16]}", loc=Loc(self.cfg.spec, 1, 1),
                         hint="resume with the spec and -p values the checkpoint was trained with "
                              f"({ckpt.get('spec_path', 'see its spec_source')})")
        self._load_states(ckpt)
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.ema is not None and "ema" in ckpt:
            self.ema.module.load_state_dict(ckpt["ema"])
        if self.scaler is not None and "scaler" in ckpt:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.state = State(ckpt["epoch"], ckpt["step"], ckpt.get("batch_in_epoch", 0), ckpt.get("best_top1", -1.0),
                           ckpt.get("rng"), list(ckpt.get("history", [])))
        before = ckpt.get("config", {}).get("epochs")
        if self.dist.main and before not in (None, self.cfg.epochs):
            note(f"the checkpoint was scheduled for {before} epochs, this run for {self.cfg.epochs}: the cosine "
                 "schedule follows the new total from here (not an exact continuation)")
        if self.dist.main:
            note(f"resuming {path} at epoch {self.state.epoch + 1}, step {self.state.step}")

    def _load_states(self, ckpt: dict[str, Any]) -> None:
        if self.cfg.fsdp:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

            set_state_dict(self.model, self.optimizer, model_state_dict=ckpt["model"],
                           optim_state_dict=ckpt["optimizer"], options=StateDictOptions(full_state_dict=True))
            return
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])


def load_checkpoint(path: str) -> dict[str, Any]:
    """A ``last.pt``/``best.pt`` loaded with ``weights_only=True`` (no pickled code runs); E373 otherwise."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise _error("E373", f"--resume {path}: no such file") from None
    except Exception as exc:  # torch reports corrupt files with many exception types
        raise _error("E373", f"--resume {path}: not a readable checkpoint: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "spec_hash" not in ckpt:
        raise _error("E373", f"--resume {path}: not an archdsl train checkpoint (no model or spec_hash)")
    return ckpt


def _save(obj: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves half a checkpoint."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _copy_spec(spec: str, files: tuple[str, ...], out: Path) -> None:
    """The spec, and the files it imports from its own folder, with their relative paths."""
    base = Path(spec).resolve().parent
    for f in {*files, spec}:
        src = Path(f).resolve()
        try:
            rel = src.relative_to(base)
        except ValueError:
            continue  # imported from elsewhere (--search-path): the spec_source/hash still identify it
        dest = out / "spec" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)


def _get_rng() -> dict[str, Any]:
    import torch

    rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def _set_rng(rng: dict[str, Any] | None) -> None:
    import torch

    if not rng:
        return
    torch.set_rng_state(rng["torch"])
    version, state, gauss = rng["python"]
    random.setstate((version, tuple(state), gauss))
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def _is_oom(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or (isinstance(exc, RuntimeError)
                                                          and "out of memory" in str(exc).lower())


def _fsdp(model, device):
    import torch.distributed as tdist

    if not tdist.is_initialized():
        raise _error("E375", "--fsdp needs several processes: launch with torchrun --nproc_per_node N")
    try:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(device.type, (tdist.get_world_size(),))
        return fully_shard(model, mesh=mesh)
    except Exception as exc:
        raise _error("E375", f"--fsdp is not available here ({device.type}): {str(exc).splitlines()[0][:200]}",
                     hint="use DDP (leave --fsdp out)") from None


def _check_options(cfg: TrainConfig, dist: Dist, device) -> None:
    """Option values argparse cannot check alone (E376, E375)."""
    if cfg.epochs < 1 or cfg.batch < 1 or cfg.workers < 0 or (cfg.stop_after is not None and cfg.stop_after < 1):
        raise _error("E376", "--epochs and --batch must be positive and --workers not negative")
    if cfg.lr is not None and not cfg.lr > 0:
        raise _error("E376", f"--lr {cfg.lr}: must be positive")
    if cfg.ema is not None and not 0.0 < cfg.ema < 1.0:
        raise _error("E376", f"--ema {cfg.ema}: the decay must be between 0 and 1 (e.g. 0.999)")
    if cfg.amp not in (None, "bf16", "fp16"):
        raise _error("E376", f"--amp {cfg.amp}: expected bf16 or fp16")
    if cfg.fsdp and cfg.ema is not None:
        raise _error("E375", "--fsdp with --ema is not supported: the average would need the full weights "
                     "on every rank", hint="leave --ema out, or use DDP")
    if cfg.fsdp and not dist.launched:
        raise _error("E375", "--fsdp needs several processes: launch with torchrun --nproc_per_node N")


def run(cfg: TrainConfig) -> int:
    """Train ``cfg.spec`` on ``cfg.data`` into ``cfg.out``; returns the exit status (0, or 130 after Ctrl-C).

    Raises :class:`~archdsl.diagnostics.DiagnosticError`, ``archdsl.train.data.DataError`` and
    ``archdsl.BuildError`` for bad input (the CLI prints them as diagnostics).
    """
    try:
        import torch  # noqa: F401
    except ImportError:
        raise _error("E379", "archdsl train needs PyTorch, which is not installed",
                     hint="pip install 'archdsl[train]'") from None
    dist = Dist.from_env()
    try:
        return Job(cfg, dist).train()
    finally:
        _close_group()


def _close_group() -> None:
    import torch.distributed as tdist

    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()
