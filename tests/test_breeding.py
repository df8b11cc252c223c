"""Breeding by hand: the picked parents breed the person's share of the children, CLIP's best the rest."""

import math

import pytest
import torch

from magnet.errors import UserError
from magnet.search.breeding import Breeding, choose_parents, next_generation
from magnet.search.result import Generation

DIM = 8


class Sphere:
    """The z space's geometry without a generator: latents on the sqrt(dim) sphere, unit mutation scale."""

    def project(self, latents):
        return torch.nn.functional.normalize(latents, dim=-1) * math.sqrt(latents.shape[-1])

    def noise_scale(self, population):
        return torch.ones(())


def score_by_first_entry(latents, label):
    """A scripted score and blank thumbnails, so that CLIP's ranking is known in advance."""
    return latents[:, 0].clone(), torch.zeros(len(latents), 3, 4, 4, dtype=torch.uint8)


@pytest.fixture
def last():
    latents = Sphere().project(torch.randn(10, DIM, generator=torch.Generator().manual_seed(1)))
    scores, thumbs = score_by_first_entry(latents, "")
    return Generation(latents, scores, thumbs)


def crossings(parents, r):
    """Every child the linear crossover can make without mutation: (1 - r) * a + r * b over ordered pairs."""
    return Sphere().project(torch.stack([(1 - r) * a + r * b for a in parents for b in parents]))


def matches(children, candidates):
    return [bool(torch.isclose(c[None], candidates, atol=1e-5).all(-1).any()) for c in children]


def breed(last, chosen, **settings):
    settings = Breeding(**{"mutation_amount": 0.0, **settings})
    return next_generation(last, chosen, settings, Sphere(), score_by_first_entry, torch.Generator().manual_seed(0))


def test_blend_0_breeds_only_the_picked_parents_who_lead_the_next_generation(last):
    new = breed(last, [7, 2], clip_weight=0.0, children=12)
    assert new.num_parents == 2 and torch.equal(new.latents[:2], last.latents[[7, 2]])
    assert torch.equal(new.scores[:2], last.scores[[7, 2]])  # carried over, not re-scored
    children = new.latents[2:]
    assert len(children) == 12 and all(matches(children, crossings(last.latents[[7, 2]], 0.333)))


def test_blend_1_is_clips_choice_alone_as_magnets_genetic_step(last):
    best4 = torch.argsort(last.scores, descending=True)[:4]
    new = breed(last, [], clip_weight=1.0, children=16, clip_parents=4)
    assert torch.equal(new.latents[:4], last.latents[best4])
    assert all(matches(new.latents[4:], crossings(last.latents[best4], 0.333)))


def test_a_blend_in_between_shares_the_children_out(last):
    best = torch.argsort(last.scores, descending=True)[:2]
    picked = [int(i) for i in torch.argsort(last.scores)[:2]]  # the two worst: no overlap with CLIP's best
    new = breed(last, picked, clip_weight=0.25, children=8, clip_parents=2)
    assert new.num_parents == 4
    children = new.latents[4:]
    assert sum(matches(children, crossings(last.latents[picked], 0.333))) == 6
    assert sum(matches(children, crossings(last.latents[best], 0.333))) == 2


def test_mutation_strength_is_the_noise_around_a_single_parent(last):
    parent = last.latents[3]
    still = breed(last, [3], children=4).latents[1:]
    assert torch.allclose(still, parent.expand_as(still), atol=1e-5)
    weak = (breed(last, [3], children=64, mutation_amount=0.1).latents[1:] - parent).norm(dim=-1).mean()
    strong = (breed(last, [3], children=64, mutation_amount=0.5).latents[1:] - parent).norm(dim=-1).mean()
    assert 3 < strong / weak < 7


def test_a_parent_picked_twice_or_also_chosen_by_clip_breeds_once(last):
    best = int(torch.argmax(last.scores))
    person, clip, n_person = choose_parents(last, [best, best], Breeding(clip_weight=0.5, clip_parents=1))
    assert person.tolist() == [best] and clip.tolist() == [best] and n_person == 8
    new = breed(last, [best], clip_weight=0.5, clip_parents=1)
    assert new.num_parents == 1


@pytest.mark.parametrize("chosen, blend, message", [
    ([], 0.0, "no parents picked"),
    ([], 0.5, "no parents picked"),
    ([0, 1, 2, 3, 4], 0.0, "pick 1 to 4"),
    ([10], 0.0, "pick 1 to 4"),
    ([-1], 0.0, "pick 1 to 4"),
])
def test_bad_picks_are_refused_in_words(last, chosen, blend, message):
    with pytest.raises(UserError, match=message):
        breed(last, chosen, clip_weight=blend)


@pytest.mark.parametrize("key, value", [("clip_weight", 1.5), ("clip_weight", -0.1), ("children", 0),
                                        ("mutation_amount", -1.0), ("crossover", "uniform")])
def test_bad_settings_name_the_setting(key, value):
    with pytest.raises(UserError, match=key):
        Breeding(**{key: value})
