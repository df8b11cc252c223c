"""The ask/tell shape every search strategy has, and the registry that finds one by name.

The caller owns the loop (`latents = s.ask(); s.tell(scores, thumbnails)` until `s.done`), so a person, a
training callback or a benchmark can step a search, overrule its choices, save it and resume it.
"""

from __future__ import annotations

import torch

from magnet.registry import Registry
from magnet.search.result import Generation, SearchResult
from magnet.search.start import reference_sample, sample_around

STRATEGIES = Registry("search strategy")


class Strategy:
    """Base of the strategies: settings are dataclass fields of the subclass, the search state lives here.

    `start(space, rng)` begins a search of a LatentSpace with its own random stream. Generation 0 is the
    initial population (`initial()`: random, or around a given latent); every later one comes from `propose()`,
    which sees `self.history`.
    `record()` turns the latents told back into a Generation (parents carried over go in front).
    The initial population may be screened: `tell(..., kept=)` scores only some of it, and the rest is dropped
    (its spread still sets the unit of the steps).
    """

    generations: int

    def start(self, space, rng: torch.Generator, around: torch.Tensor | None = None, spread: float = 0.5) -> Strategy:
        """Begin a new search (forgetting any earlier one); returns self. With `around` (a latent of `space`),
        the initial population is that latent and samples around it, `spread` wide (see `sample_around`).
        `load_state_dict` continues a search after a start with the same arguments."""
        self.space, self.rng = space, rng
        self.around, self.spread = around, spread
        self.history: list[Generation] = []
        self._asked: torch.Tensor | None = None
        self.initial_population: torch.Tensor | None = None  # every latent of generation 0, screened or not
        return self

    @property
    def generation(self) -> int:
        """Generations scored so far: 0 before the initial population is told."""
        return len(self.history)

    @property
    def done(self) -> bool:
        return len(self.history) > self.generations

    def ask(self) -> torch.Tensor:
        """The latents to score next (the same ones again until they are told)."""
        if self.done:
            raise RuntimeError(f"the search is done after {self.generations} generations; start() a new one")
        if self._asked is None:
            self._asked = self.initial() if not self.history else self.propose()
        return self._asked

    def tell(self, scores: torch.Tensor, thumbnails: torch.Tensor | None = None, kept=None) -> None:
        """Scores (N,) of the latents `ask()` gave, and optionally their uint8 thumbnails.

        `kept`: indices of the initial population's latents that were scored (a screen dropped the others).
        """
        if self._asked is None:
            raise RuntimeError("tell() needs the scores of the latents of an ask() first")
        if kept is not None and self.history:
            raise RuntimeError("only the initial population can be screened (tell(kept=) of generation 0)")
        asked = self._asked
        latents = asked if kept is None else asked[torch.as_tensor(kept, dtype=torch.long)]
        scores = torch.as_tensor(scores, dtype=torch.float32).cpu()
        if scores.shape != (len(latents),):
            raise ValueError(f"tell() got {tuple(scores.shape)} scores for {len(latents)} latents")
        if thumbnails is None:
            thumbnails = torch.zeros(len(latents), 3, 1, 1, dtype=torch.uint8)
        self._asked = None
        if not self.history:
            self.initial_population = asked
        self.history.append(self.record(latents, scores, thumbnails.cpu()))

    def initial(self) -> torch.Tensor:
        if self.around is not None:
            return sample_around(self.space, self.around, self.num_initial_samples, self.spread, self.rng)
        return self.space.sample(self.num_initial_samples, self.rng)

    def unit_sample(self) -> torch.Tensor:
        """The latents whose spread is the unit of the steps: the initial population, or after a start from a
        latent (a narrower population) random latents of the space."""
        return self.initial_population if self.around is None else reference_sample(self.space)

    def propose(self) -> torch.Tensor:
        raise NotImplementedError

    def record(self, latents, scores, thumbnails) -> Generation:
        return Generation(latents, scores, thumbnails)

    @property
    def best(self) -> tuple[torch.Tensor, float]:
        """The best latent scored so far and its score (the earlier one on a tie)."""
        result = self.result()
        return result.best_latent, result.best_score

    def result(self) -> SearchResult:
        return SearchResult(self.space, list(self.history))

    def state_dict(self) -> dict:
        """Everything needed to continue: the history, the pending ask, the random stream, own state."""
        return {
            "history": [vars(g).copy() for g in self.history],
            "asked": self._asked,
            "initial_population": self.initial_population,
            "rng": self.rng.get_state(),
            **self.extra_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue a search saved by `state_dict` (after `start()` with the same space)."""
        self.history = [Generation(**g) for g in state["history"]]
        self._asked = state["asked"]
        self.initial_population = state["initial_population"]
        self.rng.set_state(state["rng"])
        self.load_extra_state(state)

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass


def build_strategy(name: str, **settings) -> Strategy:
    """A registered strategy by name ('genetic', 'cmaes', 'random') with its settings."""
    return STRATEGIES.get(name)(**settings)
