"""A painting.png's recipe (latent, space, psi, edits, checkpoint) to explore, and the checkpoint that renders
it: the recipe is the one `magnet.search.outputs.save_png` writes and `generate.py from_png=` reads; its W+
comes from `magnet.search.recipes`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from magnet.errors import MissingFileError, UserError
from magnet.models.resolve import checkpoint_sha256, resolve_checkpoint
from magnet.search.outputs import read_png_metadata
from magnet.search.recipes import ASK_CKPT, recipe_ws
from magnet.search.space import SPACES


def read_recipe(path) -> dict:
    """The recipe of a painting.png (its metadata) or of a search (its search.json)."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        return read_png_metadata(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist; give the search.json of a folder written by generate.py")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path} is not a search record written by generate.py ({err})") from err


@dataclass(frozen=True)
class Painting:
    """The recipe of one painting.png: `metadata` as stored, read through the properties."""

    path: Path
    metadata: dict

    @property
    def space(self) -> str:
        return self.metadata["space"]

    @property
    def truncation_psi(self) -> float:
        return float(self.metadata["truncation_psi"])

    @property
    def latent(self) -> torch.Tensor:
        return torch.as_tensor(self.metadata["latent"], dtype=torch.float32)

    @property
    def edits(self) -> list[dict]:
        return list(self.metadata.get("edits", []))

    @property
    def label(self) -> str:
        """A short name: the folder of a painting.png (seed_3), else the file's stem."""
        return self.path.parent.name if self.path.stem == "painting" and self.path.parent.name else self.path.stem

    def ws(self, generator) -> torch.Tensor:
        """Its W+ (n_latent, style_dim) with the edits applied, on the generator's device."""
        return recipe_ws(generator, self.metadata, self.path)


def read_painting(path) -> Painting:
    """A painting.png written by generate.py or explore.py; one clear error for any other file."""
    path = Path(path)
    metadata = read_png_metadata(path)
    check_recipe(metadata, path)
    return Painting(path, metadata)


def check_recipe(metadata: dict, where) -> None:
    """Refuse a recipe without a usable latent, space and psi (an altered file, or one of another tool)."""
    missing = [key for key in ("latent", "space", "truncation_psi") if key not in metadata]
    if missing:
        raise UserError(f"{where}: its magnet metadata has no {', '.join(missing)}; it is not a painting's recipe")
    if metadata["space"] not in SPACES:
        raise UserError(f"{where}: unknown latent space {metadata['space']!r} in its metadata (one of {SPACES})")
    try:
        latent = torch.as_tensor(metadata["latent"], dtype=torch.float32)
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}: its latent is not a list of numbers ({err})") from err
    if latent.ndim != (2 if metadata["space"] == "w+" else 1):
        raise UserError(f"{where}: a {metadata['space']} latent of shape {tuple(latent.shape)} in its metadata")


@torch.no_grad()
def render_recipe(generator, metadata: dict, where="the painting") -> torch.Tensor:
    """The (3, size, size) image of a recipe on the CPU, with the stored noise (as the search rendered it)."""
    return generator.synthesis(recipe_ws(generator, metadata, where)[None], noise_mode="const")[0].cpu()


def choose_checkpoint(ckpt_path, sources: list, default) -> str:
    """The checkpoint to explore `sources` (painting.png or search.json files) with: `ckpt_path`, else the one
    their recipes name, else `default`. A recipe that records another checkpoint's SHA-256 is refused."""
    recipes = [(Path(p), read_recipe(p)) for p in sources]
    if ckpt_path is None:
        named = {_identity(r): (p, r["checkpoint"]) for p, r in recipes if r.get("checkpoint")}
        if len(named) > 1:
            (a, ref_a), (b, ref_b) = list(named.values())[:2]
            raise UserError(f"{a} and {b} were painted with different checkpoints ({ref_a}, {ref_b}); explore one "
                            "model's paintings together, or give ckpt_path= to render them all with one")
        if not named:
            return default
        where, ckpt_path = next(iter(named.values()))
        try:
            resolve_checkpoint(ckpt_path)
        except MissingFileError as err:
            raise MissingFileError(f"{where} was painted with checkpoint {ckpt_path}, which is not on this "
                                   f"machine; {ASK_CKPT}") from err
    recorded = [(p, r) for p, r in recipes if r.get("checkpoint_sha256")]
    if recorded:
        sha = checkpoint_sha256(ckpt_path)
        for path, recipe in recorded:
            if recipe["checkpoint_sha256"] != sha:
                raise UserError(
                    f"{path} was painted with another checkpoint ({recipe.get('checkpoint')}, sha256 "
                    f"{recipe['checkpoint_sha256'][:12]}) than {ckpt_path} (sha256 {sha[:12]}); {ASK_CKPT}"
                )
    return ckpt_path


def _identity(recipe: dict) -> str:
    return recipe.get("checkpoint_sha256") or recipe["checkpoint"]
