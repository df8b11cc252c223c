"""FID: the Frechet distance between Inception features of real and generated images."""

from magnet.metrics.distances import frechet_distance
from magnet.metrics.registry import register_metric


@register_metric("fid", features="inception")
def fid(real, fake, settings) -> dict[str, float]:
    return {"value": frechet_distance(real, fake)}
