"""Start a search from a painting.png (a search result or a projection): its latent in the search's space,
and an initial population drawn around it ("this painting, but with orange triangles")."""

from __future__ import annotations

import torch

from magnet.errors import MissingFileError, UserError
from magnet.search.outputs import read_png_metadata
from magnet.search.recipes import recipe_ws

# Which painting spaces a search space can start from; z -> W / W+ goes through the mapping network, which
# has no inverse, so a W or W+ painting cannot start a search in z (nor a true W+ one a search in W).
CONVERTIBLE = {"z": ("z",), "w": ("z", "w"), "w+": ("z", "w", "w+")}


def read_start(path, space_name: str, recipe: dict | None = None, key: str = "search.init_from") -> dict:
    """The metadata of the painting at `path`, refused (one line) unless it has a latent that a search in
    `space_name` can start from, painted with the checkpoint of `recipe` when both record its SHA-256."""
    try:
        metadata = read_png_metadata(path)
    except MissingFileError:
        raise
    except UserError:
        raise UserError(f"{key}={str(path)!r} has no magnet metadata: give a painting.png written by generate.py or "
                        f"explore.py, or project the image first (python explore.py explore=project "
                        f"explore.image={path})") from None
    if not {"latent", "space"} <= metadata.keys():
        raise UserError(f"{key}={str(path)!r} has magnet metadata without a latent; give a painting.png written "
                        "by generate.py or explore.py")
    ours, theirs = (recipe or {}).get("checkpoint_sha256"), metadata.get("checkpoint_sha256")
    if ours and theirs and ours != theirs:
        raise UserError(f"{key}={str(path)!r} was painted with another checkpoint ({metadata.get('checkpoint')}, "
                        f"sha256 {theirs[:12]}) than {recipe.get('checkpoint')} (sha256 {ours[:12]}); give "
                        "ckpt_path= the checkpoint it was painted with, or leave ckpt_path unset")
    _source_latent(metadata, space_name, key)
    return metadata


def _source_latent(metadata: dict, space_name: str, key: str) -> tuple[torch.Tensor, str]:
    """The painting's latent and space, a W latent written out per layer read as W; refused when a search in
    `space_name` cannot start from it."""
    source = "w+" if metadata.get("edits") else metadata["space"]  # edits are offsets in W+
    latent = torch.as_tensor(metadata["latent"], dtype=torch.float32)
    if source in CONVERTIBLE[space_name]:
        return latent, source
    if source == "w+" and space_name == "w" and latent.ndim == 2 and bool((latent == latent[:1]).all()):
        return latent[0], "w"
    raise UserError(f"{key} is a painting in {source}, which a search in {space_name} cannot start from: "
                    f"give search.space={source}")


def start_latent(metadata: dict, space, key: str = "search.init_from") -> torch.Tensor:
    """The painting's latent as a latent of `space` (a LatentSpace): the same image, on the CPU."""
    latent, source = _source_latent(metadata, space.name, key)
    generator = space.generator
    if metadata.get("edits"):  # an edited painting (explore.py edit): its W+ with the edits applied
        return recipe_ws(generator, metadata, key).float().cpu()
    shapes = {"z": (generator.style_dim,), "w": (generator.style_dim,),
              "w+": (generator.n_latent, generator.style_dim)}
    if tuple(latent.shape) != shapes[source]:
        raise UserError(f"{key} has a {source} latent of shape {tuple(latent.shape)}, this generator's are "
                        f"{shapes[source]}: it comes from another model, give its ckpt_path")
    if source == space.name:
        return space.project(latent[None])[0]
    with torch.no_grad():
        if source == "z":
            ws = generator.mapping(latent[None].to(space.device), truncation_psi=metadata.get("truncation_psi", 1.0))
            ws = ws.float().cpu()[0]
        else:
            ws = latent[None].expand(generator.n_latent, -1)
    return ws[0].clone() if space.name == "w" else ws.clone()


def reference_sample(space, n: int = 256) -> torch.Tensor:
    """n random latents of `space` from a fixed seed: the spread that measures steps when a search starts from
    a painting (its own initial population is narrower: init_spread 0 would stop every step)."""
    return space.sample(n, torch.Generator().manual_seed(0))


def sample_around(space, centre: torch.Tensor, n: int, spread: float, rng: torch.Generator) -> torch.Tensor:
    """`centre` itself, then n - 1 latents around it: Gaussian offsets of std `spread` in the space's unit
    (a Gaussian's std in z, the per-dimension std of random W latents in W / W+), brought back by project."""
    scale = space.noise_scale(reference_sample(space))
    offsets = torch.randn((n - 1, *centre.shape), generator=rng) * spread * scale
    return torch.cat([centre[None], space.project(centre[None] + offsets)])
