"""Published models by name, Hub and web references, their downloads and cache: `resolve.resolve_checkpoint`
turns any of them into a local file, and `python -m magnet.models` lists the names.

The registry, resolve, download, hub and drive modules import nothing from `magnet.nn`, whose checkpoint
reader calls `resolve_checkpoint`. `unpickler`, `nvlabs` and `tf_stylegan2` read NVlabs' and TensorFlow pickles
without running their code; `export`, `rosinality` and `safetensors_format` write our models in other layouts.
"""
