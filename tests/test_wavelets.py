"""The Haar transform against PyWavelets, and its inverse."""

import numpy as np
import pytest
import pywt
import torch

from magnet.nn.wavelets import haar_dwt, haar_iwt


def test_bands_match_pywavelets():
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    bands = haar_dwt(x).numpy()
    ca, (ch, cv, cd) = pywt.dwt2(x.numpy(), "haar")
    # our order (LL, LH, HL, HH) is pywt's (cA, cH, cV, cD), same signs
    for i, expected in enumerate((ca, ch, cv, cd)):
        np.testing.assert_allclose(bands[:, 3 * i: 3 * i + 3], expected, atol=1e-12)


def test_inverse_matches_pywavelets_and_reconstructs():
    x = torch.randn(2, 3, 8, 10, dtype=torch.float64)
    bands = haar_dwt(x)
    np.testing.assert_allclose(haar_iwt(bands).numpy(), x.numpy(), atol=1e-12)
    c = [b.numpy() for b in bands.chunk(4, 1)]
    np.testing.assert_allclose(haar_iwt(bands).numpy(), pywt.idwt2((c[0], tuple(c[1:])), "haar"), atol=1e-12)


def test_transform_is_orthonormal():
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    assert haar_dwt(x).square().sum().item() == pytest.approx(x.square().sum().item())


def test_bad_shapes_are_errors():
    with pytest.raises(ValueError, match="even"):
        haar_dwt(torch.zeros(1, 3, 5, 4))
    with pytest.raises(ValueError, match="4\\*C"):
        haar_iwt(torch.zeros(1, 6, 4, 4))
