"""magnet: a SWAGAN trained on modern paintings, steered by CLIP through a genetic search.

The names below are imported on first use, so that light modules (`magnet.errors`) load without torch.
"""

import importlib

_EXPORTS = {
    "build_generator": ".nn.factory", "build_discriminator": ".nn.factory",
    "load_generator": ".nn.checkpoint", "load_discriminator": ".nn.checkpoint",
    "Generator": ".nn.generator", "Discriminator": ".nn.discriminator", "NetworkConfig": ".nn.config",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'magnet' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)


__all__ = sorted(_EXPORTS)
