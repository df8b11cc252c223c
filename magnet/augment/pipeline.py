"""NVlabs' "bgc" augmentation pipeline on kornia: one affine warp and one colour matrix per image."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from kornia.geometry.conversions import axis_angle_to_rotation_matrix
from kornia.geometry.transform import warp_affine
from torch import nn
from torch.nn import functional as F

from magnet.augment.ada import AdaController
from magnet.checks import check_choice, check_float, check_int
from magnet.errors import ConfigError
from magnet.nn.ops import upfirdn2d

BLIT_OPS = ("xflip", "rotate90", "xint")
GEOM_OPS = ("scale", "rotate", "aniso", "xfrac")
GEOMETRIC_OPS = BLIT_OPS + GEOM_OPS
COLOUR_OPS = ("brightness", "contrast", "lumaflip", "hue", "saturation")
BGC = GEOMETRIC_OPS + COLOUR_OPS  # every op, in NVlabs' order
# NVlabs' named pipelines; a preset lists its ops, so an op added later joins none of them by itself.
PRESETS = {"blit": BLIT_OPS, "geom": GEOM_OPS, "color": COLOUR_OPS, "bg": GEOMETRIC_OPS, "bgc": BGC}
MODES = ("adaptive", "fixed", "none")

# Lowpass filters of the Cohen-Daubechies-Feauveau 9/7 wavelet (PyWavelets' bior4.4, JPEG 2000's), at unit
# gain. Upsampling with the 7-tap synthesis filter and downsampling with the 9-tap analysis filter gives the
# image back exactly; both are symmetric, so flips and quarter turns stay exact too (sym6, NVlabs' choice,
# is asymmetric and smears a half-turned image).
CDF97_SYNTHESIS = torch.tensor([
    -0.06453888262869706, -0.04068941760916406, 0.41809227322161724, 0.7884856164055829,
    0.41809227322161724, -0.04068941760916406, -0.06453888262869706,
]) / math.sqrt(2)  # fmt: skip
CDF97_ANALYSIS = torch.tensor([
    0.03782845550726404, -0.023849465019556843, -0.11062440441843718, 0.37740285561283066,
    0.8526986790088938, 0.37740285561283066, -0.11062440441843718, -0.023849465019556843,
    0.03782845550726404,
]) / math.sqrt(2)  # fmt: skip
_MARGIN = 3  # full-resolution pixels each side that the 2x canvas keeps for the filters


class AugmentPipe(nn.Module):
    """Applies each op of the pipeline to each image with probability `p`, differentiably w.r.t. the images.

    Geometric ops compose into one affine matrix per image (a single warp at 2x, reflecting at the borders)
    and colour ops into one 4x4 matrix; only the images that drew a non-identity transform are computed.
    """

    def __init__(
        self,
        mode: str = "adaptive",  # adaptive: the ADA controller moves p; fixed: p stays; none: identity
        p: float = 0.0,  # initial probability of each op, per image
        ops: str | Sequence[str] = "bgc",  # a preset name (PRESETS) or op names; run in NVlabs' order
        ada_target: float = 0.6,  # adaptive: wanted mean(sign(D(real))), 0 unsure .. 1 overfitting
        ada_interval: int = 4,  # adaptive: batches between adjustments of p
        ada_kimg: float = 500.0,  # adaptive: thousands of images for p to move by 1
        xint_max: float = 0.125,  # integer translation, fraction of the image size
        scale_std: float = 0.2,  # isotropic scale, log2 std
        rotate_max: float = 1.0,  # arbitrary rotation, fraction of a half turn each way (1 = full turn)
        aniso_std: float = 0.2,  # anisotropic scale, log2 std
        xfrac_std: float = 0.125,  # fractional translation, std as a fraction of the image size
        brightness_std: float = 0.2,  # added to all channels, images in [-1, 1]
        contrast_std: float = 0.5,  # contrast multiplier, log2 std
        hue_max: float = 1.0,  # hue rotation about the luma axis, fraction of a half turn each way
        saturation_std: float = 1.0,  # saturation multiplier, log2 std
    ):
        super().__init__()
        check_choice("mode", mode, MODES)
        check_float("p", p, at_least=0, at_most=1)
        ops = PRESETS.get(ops, ops) if isinstance(ops, str) else ops
        if isinstance(ops, str) or not isinstance(ops, Sequence) or not set(ops) <= set(BGC):
            raise ConfigError("ops", ops, f"a preset ({', '.join(PRESETS)}) or a list of ops from {', '.join(BGC)}")
        check_float("ada_target", ada_target, at_least=0, at_most=1)
        check_int("ada_interval", ada_interval, at_least=1)
        check_float("ada_kimg", ada_kimg, above=0)
        strengths = dict(xint_max=xint_max, scale_std=scale_std, rotate_max=rotate_max, aniso_std=aniso_std,
                         xfrac_std=xfrac_std, brightness_std=brightness_std, contrast_std=contrast_std,
                         hue_max=hue_max, saturation_std=saturation_std)
        for name, value in strengths.items():
            check_float(name, value, at_least=0)
        self.mode = mode
        self.ops = tuple(op for op in BGC if op in ops)
        # Only an adaptive pipeline has a controller (and its running sums in the checkpoint).
        self.ada = AdaController(ada_target, ada_interval, ada_kimg) if mode == "adaptive" else None
        self.xint_max, self.scale_std, self.rotate_max = xint_max, scale_std, rotate_max
        self.aniso_std, self.xfrac_std = aniso_std, xfrac_std
        self.brightness_std, self.contrast_std = brightness_std, contrast_std
        self.hue_max, self.saturation_std = hue_max, saturation_std
        self.register_buffer("p", torch.tensor(0.0 if mode == "none" else float(p)))

    def update(self, real_pred: torch.Tensor) -> float | None:
        """After each main D step, with D's logits on the augmented reals: the ADA controller's statistic
        mean(sign(D(real))) when it adjusted p this batch, else None (always None unless adaptive)."""
        return None if self.ada is None else self.ada.update(self.p, real_pred)

    def start_from(self, p: float) -> None:
        """Continue an adaptive pipeline at the p of a run fine-tuned from; a fixed p stays as configured."""
        if self.ada is not None:
            self.p.fill_(p)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, p={float(self.p):.4f}, ops={self.ops}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.mode == "none" or float(self.p) == 0.0:
            return images
        n, _, h, w = images.shape
        # Mixed precision would round the matrices and the warp: this module always computes in float32.
        with torch.autocast(images.device.type, enabled=False):
            geometry = self.sample_geometry(n, h, w, images.device)
            colour = self.sample_colour(n, images.device)
            images = _apply_where(images, _not_identity(geometry), geometry, _warp)
            return _apply_where(images, _not_identity(colour), colour, _recolour)

    def _chosen(self, n: int, device: torch.device, p: torch.Tensor | None = None) -> torch.Tensor:
        """A (N,) bool mask of the images an op applies to: each independently with probability p."""
        return torch.rand(n, device=device) < (self.p if p is None else p)

    def sample_geometry(self, n: int, h: int, w: int, device: torch.device) -> torch.Tensor:
        """Forward (source -> output) 3x3 pixel-coordinate matrices, ops composed about the image centre."""
        m = _eye(n, 3, device)
        if "xflip" in self.ops:
            flip = torch.randint(0, 2, (n,), device=device) * self._chosen(n, device)
            m = _scale2d(1.0 - 2.0 * flip, torch.ones(n, device=device)) @ m
        if "rotate90" in self.ops:
            # Exact quarter turns, 0/90/180/270 degrees uniformly (rosinality's version only reaches 0/270).
            k = torch.randint(0, 4, (n,), device=device) * self._chosen(n, device)
            cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=device)[k]
            sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=device)[k]
            m = _rotate2d(cos, sin) @ m
        if "xint" in self.ops:
            t = (torch.rand(n, 2, device=device) * 2 - 1) * self.xint_max * self._chosen(n, device)[:, None]
            m = _translate2d(torch.round(t[:, 0] * w), torch.round(t[:, 1] * h)) @ m
        if "scale" in self.ops:
            s = torch.exp2(torch.randn(n, device=device) * self.scale_std * self._chosen(n, device))
            m = _scale2d(s, s) @ m
        # The arbitrary rotation is drawn twice (around the anisotropic scale, as NVlabs does), each with a
        # probability such that at least one of the two happens with probability p.
        p_rotate = 1 - torch.sqrt((1 - self.p).clamp(min=0))
        if "rotate" in self.ops:
            m = self._random_rotation(n, device, p_rotate) @ m
        if "aniso" in self.ops:
            s = torch.exp2(torch.randn(n, device=device) * self.aniso_std * self._chosen(n, device))
            m = _scale2d(s, 1 / s) @ m
        if "rotate" in self.ops:
            m = self._random_rotation(n, device, p_rotate) @ m
        if "xfrac" in self.ops:
            t = torch.randn(n, 2, device=device) * self.xfrac_std * self._chosen(n, device)[:, None]
            m = _translate2d(t[:, 0] * w, t[:, 1] * h) @ m
        centre = torch.tensor([(w - 1) / 2, (h - 1) / 2], device=device).expand(n, 2)
        return _translate2d(centre[:, 0], centre[:, 1]) @ m @ _translate2d(-centre[:, 0], -centre[:, 1])

    def _random_rotation(self, n: int, device: torch.device, p: torch.Tensor) -> torch.Tensor:
        angle = (torch.rand(n, device=device) * 2 - 1) * math.pi * self.rotate_max
        angle = angle * self._chosen(n, device, p)
        return _rotate2d(torch.cos(angle), torch.sin(angle))

    def sample_colour(self, n: int, device: torch.device) -> torch.Tensor:
        """4x4 matrices acting on homogeneous RGB in [-1, 1]; the luma axis is the grey diagonal."""
        m = _eye(n, 4, device)
        luma = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)
        on_luma = torch.outer(luma, luma)  # projection onto the grey axis
        if "brightness" in self.ops:
            b = torch.randn(n, device=device) * self.brightness_std * self._chosen(n, device)
            shift = _eye(n, 4, device)
            shift[:, :3, 3] = b[:, None]
            m = shift @ m
        if "contrast" in self.ops:
            c = torch.exp2(torch.randn(n, device=device) * self.contrast_std * self._chosen(n, device))
            m = _scale3d(c) @ m
        if "lumaflip" in self.ops:
            flip = torch.randint(0, 2, (n,), device=device) * self._chosen(n, device)
            m = (_eye(n, 4, device) - 2 * on_luma * flip[:, None, None]) @ m  # Householder reflection
        if "hue" in self.ops:
            angle = (torch.rand(n, device=device) * 2 - 1) * math.pi * self.hue_max * self._chosen(n, device)
            rotation = _eye(n, 4, device)
            rotation[:, :3, :3] = axis_angle_to_rotation_matrix(luma[:3] * angle[:, None])
            m = rotation @ m
        if "saturation" in self.ops:
            s = torch.exp2(torch.randn(n, device=device) * self.saturation_std * self._chosen(n, device))
            m = (on_luma + (_eye(n, 4, device) - on_luma) * s[:, None, None]) @ m
        return m


def _not_identity(matrices: torch.Tensor) -> torch.Tensor:
    return (matrices != torch.eye(matrices.shape[-1], device=matrices.device)).flatten(1).any(1)


def _apply_where(images: torch.Tensor, where: torch.Tensor, matrices: torch.Tensor, apply) -> torch.Tensor:
    """Runs `apply` only on the images selected by the bool mask `where`; the others pass through untouched."""
    index = where.nonzero().squeeze(1)
    if index.numel() == 0:
        return images
    dtype = torch.promote_types(images.dtype, torch.float32)  # half-precision images are warped in float32
    done = apply(images[index].to(dtype), matrices[index].to(dtype)).to(images.dtype)
    return images.index_copy(0, index, done)


def _warp(images: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Warp at twice the resolution between the wavelet up- and downsampling, reflecting at the borders.

    Bilinear sampling at full resolution blurs every fractional move (a half-pixel shift and back loses
    about half the fine detail); at 2x between these filters most of it survives, and whole-pixel moves
    (flips, quarter turns, integer shifts) are exact.
    """
    _, _, h, w = images.shape
    if min(h, w) <= 2 * _MARGIN:
        raise ValueError(f"geometric augmentation needs images of at least {2 * _MARGIN + 1} px, got {h}x{w}")
    device, margin = images.device, 2 * _MARGIN  # margin in 2x samples
    up_filter, down_filter = CDF97_SYNTHESIS.to(device), CDF97_ANALYSIS.to(device)
    # Full-resolution pixel a sits at 2a + margin both in `up` and in the output canvas.
    up = upfirdn2d(F.pad(images, [margin] * 4, mode="reflect"), up_filter * 2, up=2, pad=3)
    up = up[..., margin:-margin, margin:-margin]
    to_canvas = torch.tensor([[2.0, 0, margin], [0, 2.0, margin], [0, 0, 1]], device=device, dtype=matrices.dtype)
    from_canvas = torch.tensor([[0.5, 0, -margin / 2], [0, 0.5, -margin / 2], [0, 0, 1]], device=device)
    canvas_from_up = to_canvas @ matrices @ from_canvas.to(matrices.dtype)
    size = (2 * h + 2 * margin, 2 * w + 2 * margin)
    canvas = warp_affine(up, canvas_from_up[:, :2], size, padding_mode="reflection", align_corners=True)
    # Output pixel m reads the 9 canvas samples centred on 2m + margin.
    return upfirdn2d(canvas, down_filter, down=2, pad=(4 - margin, 3 - margin))


def _recolour(images: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    return torch.einsum("nij,njhw->nihw", matrices[:, :3, :3], images) + matrices[:, :3, 3, None, None]


def _eye(n: int, size: int, device: torch.device) -> torch.Tensor:
    return torch.eye(size, device=device).repeat(n, 1, 1)


def _from_rows(*rows: Sequence[torch.Tensor | float], n: int, device: torch.device) -> torch.Tensor:
    """Stacks rows of per-image values (shape (N,) tensors or constants) into (N, rows, columns) matrices."""
    entry = [[torch.as_tensor(v, device=device).float().expand(n) for v in row] for row in rows]
    return torch.stack([torch.stack(row, dim=-1) for row in entry], dim=-2)


def _translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    return _from_rows([1, 0, tx], [0, 1, ty], [0, 0, 1], n=tx.shape[0], device=tx.device)


def _scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    return _from_rows([sx, 0, 0], [0, sy, 0], [0, 0, 1], n=sx.shape[0], device=sx.device)


def _rotate2d(cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return _from_rows([cos, -sin, 0], [sin, cos, 0], [0, 0, 1], n=cos.shape[0], device=cos.device)


def _scale3d(s: torch.Tensor) -> torch.Tensor:
    m = _eye(s.shape[0], 4, s.device)
    m[:, :3, :3] *= s[:, None, None]
    return m
