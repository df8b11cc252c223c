"""A separable CMA-ES (diagonal covariance, Ros & Hansen 2008): an alternative to the genetic algorithm.

The diagonal form costs O(dim) per sample, so it runs in W+ (n_latent * style_dim dimensions) as well as in z.
Update rules follow Hansen's tutorial "The CMA Evolution Strategy" (2016), maximising the score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from magnet.checks import check_float, check_int
from magnet.search.result import Generation
from magnet.search.strategies.base import STRATEGIES, Strategy
from magnet.search.strategies.genetic import select_elite

_STATE = ("mean", "diag", "sigma_now", "p_sigma", "p_c", "_z", "_y")


@STRATEGIES.register("cmaes")
@dataclass
class CMAESSearch(Strategy):
    """Starts from the best of `num_initial_samples`; `generations` x `population` further renders."""

    num_initial_samples: int = 200
    population: int = 16
    generations: int = 5
    sigma: float = 0.5  # initial step, in units of the space's noise scale (1 = a Gaussian's std in z)

    def __post_init__(self):
        check_int("num_initial_samples", self.num_initial_samples, at_least=1)
        check_int("population", self.population, at_least=2)  # the mean moves towards the better half
        check_int("generations", self.generations, at_least=0)
        check_float("sigma", self.sigma, above=0)

    def _constants(self, n: int) -> None:
        lam = self.population
        mu = lam // 2
        w = math.log(mu + 0.5) - torch.log(torch.arange(1, mu + 1, dtype=torch.float64))
        self.w = (w / w.sum()).float()
        self.mu, self.mu_eff = mu, float(1 / (self.w**2).sum())
        self.c_sigma = (self.mu_eff + 2) / (n + self.mu_eff + 5)
        self.d_sigma = 1 + 2 * max(0.0, math.sqrt((self.mu_eff - 1) / (n + 1)) - 1) + self.c_sigma
        self.c_c = (4 + self.mu_eff / n) / (n + 4 + 2 * self.mu_eff / n)
        sep = (n + 2) / 3  # the separable variant's faster learning rates
        self.c_1 = min(1.0, sep * 2 / ((n + 1.3) ** 2 + self.mu_eff))
        self.c_mu = min(1 - self.c_1, sep * 2 * (self.mu_eff - 2 + 1 / self.mu_eff) / ((n + 2) ** 2 + self.mu_eff))
        self.chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n**2))

    def propose(self) -> torch.Tensor:
        shape = self.history[0].latents.shape[1:]
        self._z = torch.randn(self.population, self.mean.numel(), generator=self.rng)
        self._y = self._z * self.diag.sqrt()
        return self.space.project((self.mean + self.sigma_now * self._y).reshape(self.population, *shape))

    def record(self, latents, scores, thumbnails) -> Generation:
        if not self.history:  # the initial population: CMA-ES starts at its best, with the space's spread
            self._constants(latents[0].numel())
            self.mean = latents[select_elite(scores, 1)][0].reshape(-1).clone()
            scale = self.space.noise_scale(self.unit_sample())
            self.diag = scale.expand(latents.shape[1:]).reshape(-1).clone() ** 2
            self.sigma_now = float(self.sigma)
            self.p_sigma, self.p_c = torch.zeros(self.mean.numel()), torch.zeros(self.mean.numel())
            return Generation(latents, scores, thumbnails)
        g, n = len(self.history), self.mean.numel()
        order = select_elite(scores, self.mu)
        y_w, z_w = self.w @ self._y[order], self.w @ self._z[order]
        self.mean = self.mean + self.sigma_now * y_w
        c_s, c_c = self.c_sigma, self.c_c
        self.p_sigma = (1 - c_s) * self.p_sigma + math.sqrt(c_s * (2 - c_s) * self.mu_eff) * z_w
        norm_ratio = float(self.p_sigma.norm()) / math.sqrt(1 - (1 - c_s) ** (2 * g))
        h_sigma = float(norm_ratio < (1.4 + 2 / (n + 1)) * self.chi_n)
        self.p_c = (1 - c_c) * self.p_c + h_sigma * math.sqrt(c_c * (2 - c_c) * self.mu_eff) * y_w
        rank_one = self.p_c**2 + (1 - h_sigma) * c_c * (2 - c_c) * self.diag
        rank_mu = self.w @ self._y[order] ** 2
        self.diag = (1 - self.c_1 - self.c_mu) * self.diag + self.c_1 * rank_one + self.c_mu * rank_mu
        self.sigma_now *= math.exp((c_s / self.d_sigma) * (float(self.p_sigma.norm()) / self.chi_n - 1))
        # The incumbent rides along as a parent (not re-rendered), so the last generation holds the best.
        last = self.history[-1]
        best = select_elite(last.scores, 1)
        return Generation(torch.cat([last.latents[best], latents]), torch.cat([last.scores[best], scores]),
                          torch.cat([last.thumbnails[best], thumbnails]), num_parents=1)

    def extra_state(self) -> dict:
        return {key: getattr(self, key, None) for key in _STATE}

    def load_extra_state(self, state: dict) -> None:
        for key in _STATE:
            setattr(self, key, state[key])
        if self.history:
            self._constants(self.history[0].latents[0].numel())
