"""A naive forward pass of NVlabs' StyleGAN2-ADA networks over their own tensor names, for tests only.

Written from the layer formulas in ../shared/reference/nvlabs_pickle_layout.md (and NVlabs' networks.py for
the resampling): per-sample modulated weights, resampling the generic way NVlabs' conv2d_resample falls back
to (zero insertion, padding and the FIR, then a true convolution with the flipped weights), clamps after
the gain. It shares no code with magnet, so agreement is evidence; the FIR loop is naive_reference's.
"""

import math

import torch
import torch.nn.functional as F
from naive_reference import fir

SQRT2 = math.sqrt(2)
BLUR = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64  # every resample_filter


def bias_act(x, b, act: bool, gain=1.0, clamp=None):
    """NVlabs' bias_act: x + b, lrelu(0.2) * sqrt(2) * gain (or linear * gain), then clamp to +-clamp."""
    if b is not None:
        x = x + b.view(1, -1, *[1] * (x.ndim - 2))
    x = (F.leaky_relu(x, 0.2) * SQRT2 if act else x) * gain
    return x.clamp(-clamp, clamp) if clamp is not None else x


def fc(sd, p, x, lr=1.0, act=False):
    w = sd[p + ".weight"]
    return bias_act(x @ (w * (lr / math.sqrt(w.shape[1]))).t(), sd[p + ".bias"] * lr, act)


def mapping(sd, z, lr=0.01):
    x = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)
    i = 0
    while f"mapping.fc{i}.weight" in sd:
        x = fc(sd, f"mapping.fc{i}", x, lr, act=True)
        i += 1
    return x


def modulated(sd, p, x, w, up=False, demod=True, style_gain=1.0):
    """One sample at a time: weights times styles, demodulated; up=2 as zero insertion + [1,3,3,1] * 4 with
    padding (3, 2) around the upsampled image, then the conv as a true convolution (weights flipped)."""
    weight = sd[p + ".weight"]
    styles = fc(sd, p + ".affine", w) * style_gain
    out = []
    for n in range(x.shape[0]):
        wn = weight * styles[n].view(1, -1, 1, 1)
        if demod:
            wn = wn * torch.rsqrt(wn.square().sum([1, 2, 3], keepdim=True) + 1e-8)
        xn = x[n: n + 1]
        if up:
            xn = fir(xn, BLUR * 4, up=2, pad=(3, 2, 3, 2))
            out.append(F.conv2d(xn, wn.flip(2, 3)))
        else:
            out.append(F.conv2d(xn, wn, padding=wn.shape[-1] // 2))
    return torch.cat(out)


def synthesis(sd, ws, clamp=None, noise=True):
    """Skip generator, noise_mode 'const' (or 'none'): images from ws (N, num_ws, w_dim)."""
    res = 4
    x = sd["synthesis.b4.const"][None].repeat(ws.shape[0], 1, 1, 1)
    img, i = None, 0
    while f"synthesis.b{res}.torgb.weight" in sd:
        b = f"synthesis.b{res}"
        for conv in (["conv1"] if res == 4 else ["conv0", "conv1"]):
            p = f"{b}.{conv}"
            x = modulated(sd, p, x, ws[:, i], up=conv == "conv0")
            if noise:
                x = x + sd[p + ".noise_const"] * sd[p + ".noise_strength"]
            x = bias_act(x, sd[p + ".bias"], True, clamp=clamp)
            i += 1
        if img is not None:  # upsample2d: zero insertion, pad (2, 1), the filter times 4
            img = fir(img, BLUR * 4, up=2, pad=(2, 1, 2, 1))
        in_channels = sd[f"{b}.torgb.weight"].shape[1]
        y = modulated(sd, f"{b}.torgb", x, ws[:, i], demod=False, style_gain=1 / math.sqrt(in_channels))
        y = bias_act(y, sd[f"{b}.torgb.bias"], False, clamp=clamp)
        img = y if img is None else img + y
        res *= 2
    return img


def generate(sd, z, psi=1.0, clamp=None, lr=0.01):
    w = mapping(sd, z, lr)
    if psi != 1:
        w = sd["mapping.w_avg"] + psi * (w - sd["mapping.w_avg"])
    num_ws = 2 + 2 * sum(1 for k in sd if k.endswith(".conv0.weight"))  # b4: conv1, torgb; then 2 per block
    return synthesis(sd, w[:, None].repeat(1, num_ws, 1), clamp)


def conv(sd, p, x, act=True, down=False, gain=1.0, clamp=None):
    """Conv2dLayer: weight gain 1/sqrt(fan in); down=2 as pad, conv, then the filter and every second sample."""
    w = sd[p + ".weight"]
    w = w / math.sqrt(w[0].numel())
    k = w.shape[-1]
    if down and k == 1:
        x = F.conv2d(fir(x, BLUR, down=2, pad=(1, 1, 1, 1)), w)
    elif down:
        x = fir(F.conv2d(F.pad(x, [2, 2, 2, 2]), w), BLUR, down=2)
    else:
        x = F.conv2d(x, w, padding=k // 2)
    return bias_act(x, sd.get(p + ".bias"), act, gain, None if clamp is None else clamp * gain)


def discriminate(sd, img, clamp=None):
    """Resnet discriminator with the epilogue (minibatch std over groups of min(4, N), 1 channel)."""
    res = img.shape[-1]
    x = conv(sd, f"b{res}.fromrgb", img, clamp=clamp)
    while f"b{res}.conv0.weight" in sd:
        b = f"b{res}"
        y = conv(sd, f"{b}.skip", x, act=False, down=True, gain=math.sqrt(0.5))
        x = conv(sd, f"{b}.conv0", x, clamp=clamp)
        x = conv(sd, f"{b}.conv1", x, down=True, gain=math.sqrt(0.5), clamp=clamp)
        x = y + x
        res //= 2
    n, c, h, w = x.shape
    g = min(4, n)
    y = x.reshape(g, -1, 1, c, h, w)
    y = (y - y.mean(0)).square().mean(0)
    y = (y + 1e-8).sqrt().mean([2, 3, 4]).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
    x = conv(sd, "b4.conv", torch.cat([x, y], 1), clamp=clamp)
    return fc(sd, "b4.out", fc(sd, "b4.fc", x.flatten(1), act=True))
