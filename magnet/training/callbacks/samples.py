"""Sample grids from the EMA generator at fixed latents, so successive grids show training progress."""

import torch
from torchvision.utils import make_grid

from magnet.checks import check_float, check_int
from magnet.images import to_uint8

from .base import EveryKimg, save_and_log_image


def image_grid(images: torch.Tensor, nrow: int | None = None):
    """(N, 3, H, W) in [-1, 1] -> one HWC uint8 grid (quantised as the FID tools do)."""
    nrow = nrow or max(int(len(images) ** 0.5), 1)
    grid = make_grid(images.float().clamp(-1, 1), nrow=nrow, padding=2, normalize=False, pad_value=1.0)
    return to_uint8(grid).permute(1, 2, 0).cpu().numpy()


class SampleGrid(EveryKimg):
    """Every `every_kimg`, at the start and at the end of training, a grid of `num_images` from `pl_module.g_ema`.

    Written as `<run>/samples/kimg<kimg>.png` and logged to the active loggers as `samples`.
    """

    def __init__(self, every_kimg: float = 50.0, num_images: int = 16, seed: int = 0,
                 truncation_psi: float = 1.0, dirname: str = "samples"):
        super().__init__(every_kimg, at_start=True, at_end=True)
        check_int("num_images", num_images, at_least=1)
        check_int("seed", seed, at_least=0)
        check_float("truncation_psi", truncation_psi)
        self.num_images, self.seed, self.truncation_psi, self.dirname = num_images, seed, truncation_psi, dirname

    @torch.no_grad()
    def run(self, trainer, pl_module, kimg: float) -> None:
        g_ema = pl_module.g_ema
        z = torch.randn(self.num_images, g_ema.style_dim, generator=torch.Generator().manual_seed(self.seed))
        images = torch.cat([g_ema(chunk.to(pl_module.device), self.truncation_psi, noise_mode="const")
                            for chunk in z.split(8)])
        save_and_log_image(trainer, self.dirname, "samples", image_grid(images), f"{kimg:.3f} kimg", kimg)
