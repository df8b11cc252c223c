"""notebooks/magnet.ipynb runs top to bottom (nbclient) on a tiny model, a random CLIP and tiny paintings."""

import os
import sys
from pathlib import Path

import nbformat
import pytest
import test_generate
import torch
from nbclient import NotebookClient
from train_config import TINY

from magnet import build_generator
from magnet.nn.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "magnet.ipynb"


@pytest.mark.slow
def test_notebook_paints_trains_and_resumes(tmp_path, tiny_paintings, monkeypatch):
    torch.manual_seed(0)
    model = tmp_path / "tiny.pt"  # stands for the named model, which would be downloaded
    torch.save({"g_ema": build_generator("swagan", 32, style_dim=32, n_mlp=2, channel_multiplier=1,
                                         channel_max=32).state_dict()}, model)
    out = tmp_path / "out"
    settings = {"INSTALL": False, "MODEL": str(model), "PROMPT": "orange triangles | blue:0.5",
                "SEARCH": " ".join(test_generate.TINY),
                "TRAIN": " ".join([*TINY, f"data.image_dir={tiny_paintings}"]),
                "KIMG": 0.004, "MORE_KIMG": 0.008, "OUT": str(out)}
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (parameters,) = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
    parameters.source = "\n".join(f"{name} = {value!r}" for name, value in settings.items())
    # `!python` in the notebook is this interpreter, as on Colab it is Colab's
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()

    shown = [output for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
             if "image/png" in output.get("data", {})]
    sheets = list(out.glob("paint/*/seed_0/generation_*.png"))
    assert sheets and len(shown) == len(sheets) + 3  # the sheets, the painting, two sample grids
    assert (out / "train" / "checkpoints" / "last.ckpt").is_file()
    assert int(read_checkpoint(out / "resumed" / "checkpoints" / "last.ckpt")["state_dict"]["nimg"]) == 8
    text = "".join(output.get("text", "") for cell in nb.cells for output in cell.get("outputs", []))
    assert "trained on 8 images" in text
