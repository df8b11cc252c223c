"""FIR resampling and bias + activation against scipy.signal, and their first and second derivatives."""

import math

import numpy as np
import pytest
import scipy.signal
import torch

from magnet.nn.ops import bias_leaky_relu, make_fir, upfirdn2d

RNG = np.random.default_rng(1234)


@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2), (2, 2), (3, 1), (1, 3), (3, 2)])
@pytest.mark.parametrize("taps", [2, 3, 4, 6])
def test_separable_matches_scipy_upfirdn(up, down, taps):
    x = RNG.standard_normal((2, 3, 9, 11))
    h = RNG.standard_normal(taps)
    expected = scipy.signal.upfirdn(h, x, up, down, axis=2)
    expected = scipy.signal.upfirdn(h, expected, up, down, axis=3)
    # scipy returns the full convolution: pad taps - 1 before and taps - up after the zero-stuffed signal
    p0, p1 = taps - 1, taps - up
    out = upfirdn2d(torch.from_numpy(x), torch.from_numpy(h), up=up, down=down, pad=(p0, p1, p0, p1))
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)


def _reference_2d(x, k, up, down, pad):
    """Zero insertion, padding (negative crops), scipy 2-D convolution, decimation."""
    x0, x1, y0, y1 = pad
    n, c, h, w = x.shape
    z = np.zeros((n, c, h * up, w * up))
    z[:, :, ::up, ::up] = x
    z = np.pad(z, ((0, 0), (0, 0), (max(y0, 0), max(y1, 0)), (max(x0, 0), max(x1, 0))))
    z = z[:, :, max(-y0, 0): z.shape[2] - max(-y1, 0), max(-x0, 0): z.shape[3] - max(-x1, 0)]
    out = np.stack([[scipy.signal.convolve2d(z[i, j], k, mode="valid") for j in range(c)] for i in range(n)])
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize(
    "up,down,pad",
    [(1, 1, (1, 2, 0, 1)), (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)), (2, 1, (1, 0, 1, 0)),
     (2, 2, (1, 1, 2, 2)), (3, 1, (2, -1, 1, 0)), (1, 3, (-1, 2, 0, 1)), (1, 1, (-1, -1, 2, 0))],
)
def test_2d_kernel_matches_scipy_convolve2d(up, down, pad):
    x = RNG.standard_normal((2, 3, 8, 7))
    k = RNG.standard_normal((4, 3))  # not separable, not square
    out = upfirdn2d(torch.from_numpy(x), torch.from_numpy(k), up=up, down=down, pad=pad)
    np.testing.assert_allclose(out.numpy(), _reference_2d(x, k, up, down, pad), atol=1e-12)


def test_pad_pair_applies_to_both_axes():
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    k = make_fir([1, 3, 3, 1]).double()
    k2 = torch.outer(k, k)
    assert torch.allclose(upfirdn2d(x, k2, up=2, pad=(2, 1)), upfirdn2d(x, k2, up=2, pad=(2, 1, 2, 1)))
    assert torch.allclose(upfirdn2d(x, k, up=2, pad=(2, 1)), upfirdn2d(x, k2, up=2, pad=(2, 1)))


def test_make_fir_has_unit_gain():
    assert make_fir([1, 3, 3, 1]).sum().item() == pytest.approx(1.0)
    assert make_fir([[1, 2], [3, 4]]).sum().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        make_fir(torch.ones(2, 2, 2))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="NCHW"):
        upfirdn2d(torch.zeros(3, 4, 4), make_fir([1, 1]))
    with pytest.raises(ValueError, match="up=0"):
        upfirdn2d(torch.zeros(1, 1, 4, 4), make_fir([1, 1]), up=0)
    with pytest.raises(ValueError, match="pad"):
        upfirdn2d(torch.zeros(1, 1, 4, 4), make_fir([1, 1]), pad=(1, 2, 3))


@pytest.mark.parametrize("up,down,pad,separable", [(2, 1, (2, 1), False), (1, 2, (1, 1), False),
                                                   (2, 1, (2, 1), True), (2, 2, (1, 2), True)])
def test_upfirdn2d_first_and_second_derivatives(up, down, pad, separable):
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    k = make_fir([1, 3, 3, 1]).double()
    k = k if separable else torch.outer(k, k)

    def fn(inp):
        return upfirdn2d(inp, k, up=up, down=down, pad=pad)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_bias_leaky_relu_values_and_derivatives():
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    pre = x.numpy() + b.numpy()[None, :, None, None]
    expected = np.where(pre >= 0, pre, 0.2 * pre) * math.sqrt(2)
    np.testing.assert_allclose(bias_leaky_relu(x, b).numpy(), expected, atol=1e-12)
    x.requires_grad_(True)
    b.requires_grad_(True)
    assert torch.autograd.gradcheck(bias_leaky_relu, (x, b))
    # the activation is piecewise linear: its second derivative is zero, which gradgradcheck verifies
    assert torch.autograd.gradgradcheck(lambda a, c: bias_leaky_relu(a, c).square(), (x, b))
