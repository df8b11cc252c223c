"""A separable CMA-ES (diagonal covariance, Ros & Hansen 2008): an alternative to the genetic algorithm.

The diagonal form costs O(dim) per sample, so it runs in W+ (n_latent * style_dim dimensions) as well as in z.
Update rules follow Hansen's tutorial "The CMA Evolution Strategy" (2016), maximising the score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from magnet.search.genetic import select_elite
from magnet.search.result import Generation, SearchResult


@dataclass
class CMAESSearch:
    """Starts from the best of `num_initial_samples`; `generations` x `population` further renders."""

    num_initial_samples: int = 200
    population: int = 16
    generations: int = 5
    sigma: float = 0.5  # initial step, in units of the space's noise scale (1 = a Gaussian's std in z)

    def __post_init__(self):
        if self.population < 2:
            raise ValueError(f"population={self.population} must be at least 2 for CMA-ES")

    def run(self, evaluate, space, rng: torch.Generator) -> SearchResult:
        result = SearchResult(space.space, space.truncation_psi)
        latents = space.sample(self.num_initial_samples, rng)
        scores, thumbs = evaluate(latents, "initial")
        result.generations.append(Generation(latents, scores, thumbs))
        shape = latents.shape[1:]
        best = select_elite(scores, 1)
        best_latent, best_score, best_thumb = latents[best], scores[best], thumbs[best]

        n, lam = latents[0].numel(), self.population
        mu = lam // 2
        w = math.log(mu + 0.5) - torch.log(torch.arange(1, mu + 1, dtype=torch.float64))
        w = (w / w.sum()).float()
        mu_eff = float(1 / (w**2).sum())
        c_sigma = (mu_eff + 2) / (n + mu_eff + 5)
        d_sigma = 1 + 2 * max(0.0, math.sqrt((mu_eff - 1) / (n + 1)) - 1) + c_sigma
        c_c = (4 + mu_eff / n) / (n + 4 + 2 * mu_eff / n)
        sep = (n + 2) / 3  # the separable variant's faster learning rates
        c_1 = min(1.0, sep * 2 / ((n + 1.3) ** 2 + mu_eff))
        c_mu = min(1 - c_1, sep * 2 * (mu_eff - 2 + 1 / mu_eff) / ((n + 2) ** 2 + mu_eff))
        chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n**2))

        mean = best_latent[0].reshape(-1).clone()
        diag = space.noise_scale(latents).expand(shape).reshape(-1).clone() ** 2  # diagonal of C
        sigma = self.sigma
        p_sigma, p_c = torch.zeros(n), torch.zeros(n)
        for g in range(1, self.generations + 1):
            z = torch.randn(lam, n, generator=rng)
            y = z * diag.sqrt()
            children = space.project((mean + sigma * y).reshape(lam, *shape))
            child_scores, child_thumbs = evaluate(children, f"generation {g}")
            order = select_elite(child_scores, mu)
            y_w, z_w = w @ y[order], w @ z[order]
            mean = mean + sigma * y_w
            p_sigma = (1 - c_sigma) * p_sigma + math.sqrt(c_sigma * (2 - c_sigma) * mu_eff) * z_w
            norm_ratio = float(p_sigma.norm()) / math.sqrt(1 - (1 - c_sigma) ** (2 * g))
            h_sigma = float(norm_ratio < (1.4 + 2 / (n + 1)) * chi_n)
            p_c = (1 - c_c) * p_c + h_sigma * math.sqrt(c_c * (2 - c_c) * mu_eff) * y_w
            rank_one = p_c**2 + (1 - h_sigma) * c_c * (2 - c_c) * diag
            diag = (1 - c_1 - c_mu) * diag + c_1 * rank_one + c_mu * (w @ y[order] ** 2)
            sigma *= math.exp((c_sigma / d_sigma) * (float(p_sigma.norm()) / chi_n - 1))

            # The incumbent rides along as a parent (not re-rendered), so the last generation holds the best.
            latents = torch.cat([best_latent, children])
            scores = torch.cat([best_score, child_scores])
            thumbs = torch.cat([best_thumb, child_thumbs])
            result.generations.append(Generation(latents, scores, thumbs, num_parents=1))
            best = select_elite(scores, 1)
            best_latent, best_score, best_thumb = latents[best], scores[best], thumbs[best]
        return result
