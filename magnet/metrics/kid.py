"""KID: the kernel (cubic polynomial MMD) distance of Inception features, mean and std over random subsets."""

from magnet.metrics.distances import kernel_distance
from magnet.metrics.registry import register_metric


@register_metric("kid", features="inception")
def kid(real, fake, settings) -> dict[str, float]:
    mean, std = kernel_distance(real, fake, settings.kid_subsets, settings.kid_subset_size)
    return {"value": mean, "std": std}
