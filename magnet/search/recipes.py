"""A painting's recipe (latent, space, psi, edits) as the W+ it renders, for the search and for explore.

Edits are offsets in W+ (`{"kind": "sefa", "index": k, "amount": d, "layers": [first, last], "direction":
[...]}`): the direction itself is stored, so a recipe renders the same without recomputing anything.
"""

from __future__ import annotations

import torch

from magnet.errors import UserError
from magnet.search.space import LatentSpace

ASK_CKPT = "give ckpt_path= the checkpoint it was painted with"


def check_fits(generator, metadata: dict, where) -> None:
    """The latent's shape against the generator's: a latent of another model is refused, naming its checkpoint."""
    latent = torch.as_tensor(metadata["latent"])
    expected = (generator.n_latent, generator.style_dim) if metadata["space"] == "w+" else (generator.style_dim,)
    if tuple(latent.shape) != expected:
        raise UserError(
            f"{where} holds a {metadata['space']} latent of shape {tuple(latent.shape)}, but this generator takes "
            f"{expected}: it was painted with another checkpoint ({metadata.get('checkpoint')}); {ASK_CKPT}"
        )


def apply_edits(ws: torch.Tensor, edits: list[dict]) -> torch.Tensor:
    """W+ (..., n_latent, style_dim) moved by each edit's amount along its direction, on its layers."""
    ws = ws.clone()
    for edit in edits:
        first, last = edit["layers"]
        direction = torch.as_tensor(edit["direction"], dtype=ws.dtype, device=ws.device)
        ws[..., first : last + 1, :] += float(edit["amount"]) * direction
    return ws


@torch.no_grad()
def recipe_ws(generator, metadata: dict, where="the painting") -> torch.Tensor:
    """The W+ (n_latent, style_dim) a recipe renders: its latent through its space and psi, plus its edits."""
    check_fits(generator, metadata, where)
    space = LatentSpace(generator, metadata["space"], metadata["truncation_psi"])
    ws = space.to_ws(torch.as_tensor(metadata["latent"], dtype=torch.float32)[None])[0]
    return apply_edits(ws, metadata.get("edits", []))
