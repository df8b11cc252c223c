"""The GAN as a LightningModule: StyleGAN2's training recipe with ADA, lazy regularisation and an EMA generator.

Time is counted in images seen (`nimg`, a checkpointed buffer), never in `trainer.global_step`, which
grows by two or more optimizer steps per batch here. Everything that must survive a resume is a buffer
or optimizer state; the random number generators are saved with the checkpoint too.
"""

import logging
import math
import random
import time

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.callbacks import Timer

from magnet.augment import AugmentPipe
from magnet.checks import check_bool, check_choice, check_float, check_int
from magnet.errors import ConfigError, UserError, config_key
from magnet.nn import Discriminator, Generator, NetworkConfig, style_mix
from magnet.nn.checkpoint import discriminator_from, generator_from, read_checkpoint
from magnet.nn.factory import to_channels_last
from magnet.training.ema import ema_beta, make_ema, update_ema
from magnet.training.losses import d_logistic_loss, d_r1_loss, g_nonsaturating_loss, g_path_regularize
from magnet.training.rng import capture_rng, offset_seeds, restore_rng

log = logging.getLogger(__name__)


def _check_settings(hp) -> None:
    """Refuse bad training settings (`hp`: the GAN's hyperparameters) before any network is built."""
    with config_key("network"):
        NetworkConfig(**hp.network)
    check_float("lr", hp.lr, above=0)
    check_float("lr_rampdown", hp.lr_rampdown, at_least=0, at_most=1)
    if not isinstance(hp.betas, list | tuple) or len(hp.betas) != 2:
        raise ConfigError("betas", hp.betas, "two numbers [beta1, beta2] from 0 to below 1")
    for i, beta in enumerate(hp.betas):
        check_float(f"betas[{i}]", beta, at_least=0, below=1)
    check_float("r1_gamma", hp.r1_gamma, at_least=0)
    check_int("d_reg_every", hp.d_reg_every, at_least=1)
    check_int("g_reg_every", hp.g_reg_every, at_least=1)
    check_float("pl_weight", hp.pl_weight, at_least=0)
    check_int("pl_batch_shrink", hp.pl_batch_shrink, at_least=1)
    check_float("pl_decay", hp.pl_decay, at_least=0, at_most=1)
    check_float("style_mixing", hp.style_mixing, at_least=0, at_most=1)
    check_float("ema_kimg", hp.ema_kimg, at_least=0)
    check_float("ema_rampup", hp.ema_rampup, above=0, optional=True)
    check_choice("from_rgb_kernel", hp.from_rgb_kernel, (1, 3))
    check_float("total_kimg", hp.total_kimg, above=0)
    check_bool("channels_last", hp.channels_last)
    check_bool("compile", hp.compile)


def lazy_adam(params, lr: float, betas: tuple[float, float], interval: int) -> torch.optim.Adam:
    """Adam corrected for a regulariser applied every `interval` steps (StyleGAN2's lazy regularisation)."""
    c = interval / (interval + 1)
    return torch.optim.Adam(params, lr=lr * c, betas=(betas[0] ** c, betas[1] ** c), eps=1e-8)


def run_progress(kimg: float, total_kimg: float, callbacks) -> float:
    """How far through its run training is: the images seen against total_kimg, or the time spent against
    trainer.max_time (Lightning's Timer among `callbacks`), whichever is further."""
    progress = kimg / total_kimg
    for timer in (cb for cb in callbacks if isinstance(cb, Timer)):
        remaining = timer.time_remaining("train")
        if remaining is not None:
            elapsed = timer.time_elapsed("train")
            progress = max(progress, elapsed / max(elapsed + remaining, 1e-9))
    return min(progress, 1.0)


def lr_scale(progress: float, rampdown: float) -> float:
    """The learning rate's factor at `progress` (0 to 1) through the run: 1, then a cosine to 0 over the last
    `rampdown` of it (NVlabs' projector schedules its lr so; 0: constant)."""
    if rampdown <= 0:
        return 1.0
    t = min(max((progress - (1 - rampdown)) / rampdown, 0.0), 1.0)
    return 0.5 * (1 + math.cos(math.pi * t))


class GAN(pl.LightningModule):
    def __init__(
        self,
        network: dict,  # NetworkConfig fields: arch, size, style_dim, n_mlp, channel_multiplier, channel_max, ...
        augment: AugmentPipe | None = None,  # ADA pipeline with its controller (None: no augmentation)
        lr: float = 0.002,  # Adam learning rate of both networks (before the lazy correction)
        lr_rampdown: float = 0.0,  # fraction of the run at its end over which both rates fall to 0 (0: constant)
        betas: tuple[float, float] = (0.0, 0.99),
        r1_gamma: float = 10.0,  # R1 weight
        d_reg_every: int = 16,  # batches between R1 steps
        g_reg_every: int = 4,  # batches between path-length steps
        pl_weight: float = 2.0,  # path-length weight (0 disables)
        pl_batch_shrink: int = 2,  # path-length batch = batch / shrink
        pl_decay: float = 0.01,  # decay of the running mean path length
        style_mixing: float = 0.9,  # probability of mixing two latents in a batch
        ema_kimg: float = 10.0,  # EMA half-life in thousands of images
        ema_rampup: float | None = 0.05,  # EMA half-life at most this fraction of images seen (None: off)
        from_rgb_kernel: int = 3,  # SWAGAN discriminator's FromRGB conv (1 for MAGnet-era checkpoints)
        init_from: str | None = None,  # start from these weights: ours, rosinality's/MAGnet's, an NVlabs/TF pickle
        total_kimg: float = 25_000.0,  # stop after this many thousand images
        channels_last: bool = False,  # networks and batches in NHWC memory layout (faster convolutions on GPUs)
        compile: bool = False,  # torch.compile G's synthesis and D for the main (non-regularising) steps
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["augment"])
        _check_settings(self.hparams)
        self.automatic_optimization = False
        self.config = NetworkConfig(**network)
        self.G = Generator(self.config)
        self.D = Discriminator(self.config, from_rgb_kernel=from_rgb_kernel)
        self.augment = augment if augment is not None else AugmentPipe(mode="none")
        self.register_buffer("nimg", torch.zeros((), dtype=torch.long))  # images seen, all ranks
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))  # training batches done
        self.register_buffer("pl_mean", torch.zeros(()))  # running mean path length
        self._init_ada_p, self._init_optim = None, []
        self.g_ema = make_ema(self.G)
        if init_from:
            self._load_weights(init_from)

    @property
    def kimg(self) -> float:
        return float(self.nimg) / 1000

    def _load_weights(self, path: str):
        """Fine-tune: G, D and G_ema from a checkpoint of the same architecture (rosinality's layout or ours),
        with the optimizer states and ADA p when it has them, as MAGnet resumed rosinality's training."""
        ckpt = read_checkpoint(path)
        ours = "state_dict" in ckpt
        self.G = generator_from(ckpt, "g", path, self.config, setting="model.network")
        self.D = discriminator_from(ckpt, "d", path, self.config, setting="model.network")
        self.hparams.from_rgb_kernel = self.D.from_rgb_kernel
        self.g_ema = make_ema(generator_from(ckpt, "g_ema", path, self.config, setting="model.network"))
        self.config = self.G.config  # the file's conv_clamp, which checkpoints of this run then record
        if ours:
            self._init_optim = ckpt.get("optimizer_states", [])
            p = ckpt["state_dict"].get("augment.p")
            self._init_ada_p = float(p) if p is not None else None
        else:
            self._init_optim = [ckpt.get("g_optim") or {}, ckpt.get("d_optim") or {}]
            self._init_ada_p = float(ckpt["ada_aug_p"]) if "ada_aug_p" in ckpt else None

    def _schedule_lr(self, optimizers) -> float:
        """Set both optimizers' rates for this batch from the run's progress; returns the factor applied."""
        progress = run_progress(self.kimg, self.hparams.total_kimg, self.trainer.callbacks)
        if self.trainer.world_size > 1:  # each rank reads its own clock: all take rank 0's, as the Timer does
            progress = self.trainer.strategy.broadcast(progress)
        scale = lr_scale(progress, self.hparams.lr_rampdown)
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                group["lr"] = group.setdefault("initial_lr", group["lr"]) * scale
        return scale

    def configure_optimizers(self):
        hp = self.hparams
        opt_g = lazy_adam(self.G.parameters(), hp.lr, hp.betas, hp.g_reg_every)
        opt_d = lazy_adam(self.D.parameters(), hp.lr, hp.betas, hp.d_reg_every)
        return opt_g, opt_d

    def setup(self, stage: str):
        """Memory layout and compiled callables, once the networks are final (after `init_from`).

        The compiled functions wrap the networks' forward methods and are no modules themselves, so the
        state_dict keys stay the eager networks' (no `_orig_mod.`). The R1 and path-length steps call the
        eager networks: they differentiate a gradient, which compiled graphs do not support.
        """
        if self.hparams.channels_last:
            for net in (self.G, self.D, self.g_ema):
                to_channels_last(net)
        self._synthesis, self._discriminate = self.G.synthesis, self.D.forward
        if self.hparams.compile:
            self._synthesis, self._discriminate = torch.compile(self._synthesis), torch.compile(self._discriminate)
        self._first_step_logged = False

    def on_fit_start(self):
        """A fresh start: one random stream per rank; when fine-tuning, the source's Adam moments and ADA p."""
        if self.nimg > 0:
            return
        if self.trainer.global_rank > 0:
            offset_seeds(self.trainer.global_rank)
        if self._init_ada_p is not None:
            self.augment.start_from(self._init_ada_p)
        for optimizer, source in zip(self.optimizers(), self._init_optim):
            if source.get("state"):  # moments only: lr and betas stay those of our config
                optimizer.load_state_dict({**optimizer.state_dict(), "state": source["state"]})

    def on_train_start(self):
        """A run resumed from a checkpoint at or past `total_kimg` trains no further batch."""
        if self.kimg >= self.hparams.total_kimg:
            self.trainer.should_stop = True

    # ------------------------------------------------------------------ the training step
    def _latents(self, n: int) -> torch.Tensor:
        """W+ for a batch, mixing two latents at a random layer with probability `style_mixing`."""
        ws = self.G.mapping(torch.randn(n, self.config.style_dim, device=self.device))
        if self.hparams.style_mixing > 0 and random.random() < self.hparams.style_mixing:
            ws2 = self.G.mapping(torch.randn(n, self.config.style_dim, device=self.device))
            ws = style_mix(ws, ws2, random.randint(1, self.G.n_latent - 1))
        return ws

    def _float32(self):
        """Mixed precision off: the gradient penalties differentiate a gradient, which bf16 would round."""
        return torch.autocast(self.device.type, enabled=False)

    def _step(self, optimizer, loss: torch.Tensor, name: str):
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{name} became {loss.item()} at {self.kimg:.1f} kimg; training stopped and the last good "
                "checkpoint is kept. Lower model.lr or raise model.r1_gamma, then resume from it."
            )
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()

    def training_step(self, batch, batch_idx):
        start = time.perf_counter()
        real = batch[0] if isinstance(batch, (list, tuple)) else batch
        if self.hparams.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        hp, n = self.hparams, real.shape[0]
        opt_g, opt_d = self.optimizers()
        batches = int(self.batches) + 1
        logs = {}
        if hp.lr_rampdown > 0:
            logs["train/lr_scale"] = self._schedule_lr((opt_g, opt_d))

        # D: real vs fake
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        with torch.no_grad():
            fake = self._synthesis(self._latents(n))
        real_pred = self._discriminate(self.augment(real))
        loss_d = d_logistic_loss(real_pred, self._discriminate(self.augment(fake)))
        self._step(opt_d, loss_d, "train/loss_d")
        real_sign = self.augment.update(real_pred)
        logs["train/loss_d"] = loss_d.detach()
        if real_sign is not None:
            logs["train/D_real_sign"] = real_sign

        # D: lazy R1 on the reals
        if hp.r1_gamma > 0 and batches % hp.d_reg_every == 0:
            real_in = real.detach().float().requires_grad_(True)
            with self._float32():
                pred = self.D(self.augment(real_in))
                r1 = d_r1_loss(pred, real_in)
            self._step(opt_d, hp.r1_gamma / 2 * r1 * hp.d_reg_every + 0 * pred[0, 0], "train/r1")
            logs["train/r1"] = r1.detach()

        # G: fool D
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        loss_g = g_nonsaturating_loss(self._discriminate(self.augment(self._synthesis(self._latents(n)))))
        self._step(opt_g, loss_g, "train/loss_g")
        logs["train/loss_g"] = loss_g.detach()

        # G: lazy path-length regularisation
        if hp.pl_weight > 0 and batches % hp.g_reg_every == 0:
            with self._float32():
                ws = self._latents(max(n // hp.pl_batch_shrink, 1))
                img = self.G.synthesis(ws)
                penalty, mean, _ = g_path_regularize(img, ws, self.pl_mean, hp.pl_decay)
            # one running mean for all ranks, so rank 0's checkpoint resumes every rank exactly
            self.pl_mean.copy_(self.trainer.strategy.reduce(mean, reduce_op="mean"))
            self._step(opt_g, hp.pl_weight * hp.g_reg_every * penalty + 0 * img[0, 0, 0, 0], "train/pl")
            logs["train/pl"] = penalty.detach()
        self.D.requires_grad_(True)

        images = n * self.trainer.world_size
        if self.trainer.world_size > 1:  # each rank tracked the average w on its own latents: agree on one
            self.G.w_avg.copy_(self.trainer.strategy.reduce(self.G.w_avg.clone(), reduce_op="mean"))
        update_ema(self.g_ema, self.G, ema_beta(images, hp.ema_kimg, int(self.nimg), hp.ema_rampup))
        self.nimg += images
        self.batches += 1
        logs["train/ada_p"] = self.augment.p.detach()
        logs["train/kimg"] = self.kimg
        if not self._first_step_logged:  # with model.compile=true, the compile time is in this figure
            self._first_step_logged = True
            logs["perf/first_step_s"] = time.perf_counter() - start
            log.info("first training batch: %.1f s%s", logs["perf/first_step_s"],
                     " (torch.compile included)" if self.hparams.compile else "")
        self.log_dict(logs, prog_bar=True, batch_size=n)
        if self.kimg >= hp.total_kimg:
            self.trainer.should_stop = True

    # ------------------------------------------------------------------ exact resume
    def on_save_checkpoint(self, checkpoint: dict):
        """Every rank's random states (gathered: each rank has its own stream) and the network's shape."""
        states = [capture_rng()]
        if dist.is_available() and dist.is_initialized():
            states = [None] * dist.get_world_size()
            dist.all_gather_object(states, capture_rng())
        checkpoint["rng"] = states
        checkpoint["network"] = self.config.to_dict()

    def on_load_checkpoint(self, checkpoint: dict):
        clamp = (checkpoint.get("network") or {}).get("conv_clamp", self.config.conv_clamp)
        if clamp != self.config.conv_clamp:  # the shapes agree, so nothing else would notice
            raise UserError(f"the checkpoint to resume computes with conv_clamp={clamp}, this run's networks with "
                            f"conv_clamp={self.config.conv_clamp}; resume with the run's settings (its "
                            f"model.init_from, or model.network.conv_clamp={clamp})")
        states = checkpoint.get("rng")
        if states:
            rank = self.trainer.global_rank if self._trainer is not None else 0
            restore_rng(states[rank % len(states)])


__all__ = ["GAN", "lazy_adam", "lr_scale", "run_progress"]
