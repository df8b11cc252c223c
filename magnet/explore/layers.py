"""W+ layer ranges by name (coarse, middle, fine: the resolutions they shape) or by index."""

from __future__ import annotations

from magnet.errors import ConfigError


def layer_resolution(generator, index: int) -> int:
    """Image px of the synthesis block W+ vector `index` styles (two per block from 4 px, as NVlabs counts; a
    SWAGAN block of n px makes the wavelet bands of a 2n px image)."""
    return 2 ** (index // 2 + 2) * (2 if generator.config.wavelet else 1)


def check_layers(key: str, layers, ranges: dict) -> None:
    """null (every layer), a name of `ranges`, or [first, last] indices (checked against a generator later)."""
    if layers is None or (isinstance(layers, str) and layers in ranges):
        return
    if isinstance(layers, list | tuple) and len(layers) == 2 and \
            all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in layers) and layers[0] <= layers[1]:
        return
    names = ", ".join(ranges)
    raise ConfigError(key, layers, f"null (all layers), one of {names} or [first, last] W+ indices (first <= last)")


def check_ranges(key: str, ranges) -> None:
    """{name: [lowest px, highest px]} with powers of two in order."""
    if not isinstance(ranges, dict) or not all(
        isinstance(r, list | tuple) and len(r) == 2 and all(isinstance(v, int) and v >= 4 for v in r) and r[0] <= r[1]
        for r in ranges.values()
    ):
        raise ConfigError(key, ranges, "a mapping of names to [lowest px, highest px] (e.g. coarse: [4, 8])")


def layer_span(generator, layers, ranges: dict, key: str = "layers") -> tuple[int, int]:
    """[first, last] W+ indices (inclusive) of `layers` in this generator; a range it lacks is refused."""
    n = generator.n_latent
    if layers is None:
        return 0, n - 1
    if isinstance(layers, str):
        low, high = ranges[layers]
        inside = [i for i in range(n) if low <= layer_resolution(generator, i) <= high]
        if not inside:
            raise ConfigError(key, layers, f"a range this {generator.size} px generator has: {layers} is {low}-{high} "
                              f"px; give [first, last] indices in 0..{n - 1} or another name")
        return inside[0], inside[-1]
    first, last = layers
    if last >= n:
        raise ConfigError(key, list(layers), f"W+ indices within 0..{n - 1} (this generator has {n} W+ vectors)")
    return first, last


def describe_span(generator, first: int, last: int) -> str:
    """'layers 0-3 (4-8 px)'."""
    return f"layers {first}-{last} ({layer_resolution(generator, first)}-{layer_resolution(generator, last)} px)"
