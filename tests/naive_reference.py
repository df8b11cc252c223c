"""A deliberately naive, independent forward pass over rosinality-format weights, for tests only.

It reads a state dict with rosinality's key names (constant filter buffers included) and follows
rosinality's semantics the slow, literal way: weights modulated and demodulated per sample, FIR filters
as zero insertion + padding + a loop over the (flipped) taps, Haar transforms through the filter
buffers stored in the checkpoint. It shares no code with magnet.nn, so agreement is evidence.
"""

import math
import re

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2)


def fir(x, k, up=1, down=1, pad=(0, 0, 0, 0)):
    """Zero insertion, (x0, x1, y0, y1) padding, true convolution as a loop over taps, decimation."""
    n, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(n, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    x0, x1, y0, y1 = pad
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0): x.shape[2] - max(-y1, 0), max(-x0, 0): x.shape[3] - max(-x1, 0)]
    kh, kw = k.shape
    oh, ow = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    out = x.new_zeros(n, c, oh, ow)
    flipped = k.flip(0, 1)
    for i in range(kh):
        for j in range(kw):
            out = out + x[:, :, i: i + oh, j: j + ow] * flipped[i, j]
    return out[:, :, ::down, ::down]


def lrelu(x, bias):
    return F.leaky_relu(x + bias.view(1, -1, *[1] * (x.ndim - 2)), 0.2) * SQRT2


def linear(sd, p, x, lr_mul=1.0, act=False):
    w = sd[p + ".weight"]
    y = x @ (w * lr_mul / math.sqrt(w.shape[1])).t()
    b = sd[p + ".bias"] * lr_mul
    return lrelu(y, b) if act else y + b


def modconv(sd, p, x, style, demod=True, upsample=False):
    weight = sd[p + ".weight"][0]
    out_c, in_c, k, _ = weight.shape
    s = linear(sd, p + ".modulation", style)
    outs = []
    for b in range(x.shape[0]):
        w = weight / math.sqrt(in_c * k * k) * s[b].view(1, in_c, 1, 1)
        if demod:
            w = w / torch.sqrt(w.pow(2).sum([1, 2, 3], keepdim=True) + 1e-8)
        xb = x[b: b + 1]
        if upsample:
            y = F.conv_transpose2d(xb, w.transpose(0, 1), stride=2)
            y = fir(y, sd[p + ".blur.kernel"], pad=(1, 1, 1, 1))
        else:
            y = F.conv2d(xb, w, padding=k // 2)
        outs.append(y)
    return torch.cat(outs)


def haar(sd, p, x):
    return torch.cat([fir(x, sd[f"{p}.{band}"], down=2) for band in ("ll", "lh", "hl", "hh")], 1)


def inverse_haar(sd, p, x):
    # rosinality's InverseHaarTransform stores its lh and hl filters already negated
    bands = x.chunk(4, 1)
    return sum(fir(b, sd[f"{p}.{n}"], up=2, pad=(1, 0, 1, 0)) for b, n in zip(bands, ("ll", "lh", "hl", "hh")))


def to_rgb(sd, p, x, style, skip, wavelet):
    out = modconv(sd, p + ".conv", x, style, demod=False) + sd[p + ".bias"]
    if skip is None:
        return out
    up = dict(up=2, pad=(2, 1, 2, 1))
    if wavelet:
        skip = haar(sd, p + ".dwt", fir(inverse_haar(sd, p + ".iwt", skip), sd[p + ".upsample.kernel"], **up))
    else:
        skip = fir(skip, sd[p + ".upsample.kernel"], **up)
    return out + skip


def mapping(sd, z):
    x = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
    i = 1
    while f"style.{i}.weight" in sd:
        x = linear(sd, f"style.{i}", x, lr_mul=0.01, act=True)
        i += 1
    return x


def generate(sd, styles, wavelet, inject_index=None, psi=1.0, w_mean=None, noises=None, blocks=None):
    """rosinality's Generator.forward(styles, randomize_noise=False) over W vectors `styles` (1 or 2).

    `blocks`: run only the first that many upsampling blocks and return the image at that level."""
    n_blocks = sum(1 for k in sd if re.fullmatch(r"to_rgbs\.\d+\.bias", k))
    n_latent = (n_blocks + 2) * 2 - 2
    if psi != 1:
        styles = [w_mean + psi * (s - w_mean) for s in styles]
    if len(styles) == 1:
        latent = styles[0].unsqueeze(1).repeat(1, n_latent, 1)
    else:
        latent = torch.cat([styles[0].unsqueeze(1).repeat(1, inject_index, 1),
                            styles[1].unsqueeze(1).repeat(1, n_latent - inject_index, 1)], 1)
    noises = noises or [sd[f"noises.noise_{i}"] for i in range(2 * n_blocks + 1)]

    def styled(p, x, w, noise, upsample=False):
        x = modconv(sd, p + ".conv", x, w, upsample=upsample)
        x = x + sd[p + ".noise.weight"] * noise
        return lrelu(x, sd[p + ".activate.bias"])

    x = sd["input.input"].repeat(latent.shape[0], 1, 1, 1)
    x = styled("conv1", x, latent[:, 0], noises[0])
    skip = to_rgb(sd, "to_rgb1", x, latent[:, 1], None, wavelet)
    for b in range(n_blocks if blocks is None else blocks):
        i = 1 + 2 * b
        x = styled(f"convs.{2 * b}", x, latent[:, i], noises[i], upsample=True)
        x = styled(f"convs.{2 * b + 1}", x, latent[:, i + 1], noises[i + 1])
        skip = to_rgb(sd, f"to_rgbs.{b}", x, latent[:, i + 2], skip, wavelet)
    image = inverse_haar(sd, "iwt", skip) if wavelet else skip
    return image, latent


def conv_layer(sd, p, x, downsample=False, act=True):
    """rosinality's ConvLayer: [Blur] + EqualConv2d + [FusedLeakyReLU] as a Sequential."""
    idx = 0
    if downsample:
        pp = 2 + (sd[f"{p}.1.weight"].shape[-1] - 1)
        x = fir(x, sd[f"{p}.0.kernel"], pad=((pp + 1) // 2, pp // 2, (pp + 1) // 2, pp // 2))
        idx = 1
    w = sd[f"{p}.{idx}.weight"]
    scale = 1 / math.sqrt(w.shape[1] * w.shape[2] ** 2)
    x = F.conv2d(x, w * scale, stride=2 if downsample else 1, padding=0 if downsample else w.shape[-1] // 2)
    return lrelu(x, sd[f"{p}.{idx + 1}.bias"]) if act else x


def discriminate(sd, img):
    """rosinality's Discriminator (model.py) or SWAGAN Discriminator (swagan.py), picked by key names."""
    if "dwt.ll" in sd:
        bands, out = haar(sd, "dwt", img), None
        n = sum(1 for k in sd if k.startswith("from_rgbs.") and k.endswith(".conv.0.weight"))
        for i in range(n):
            p = f"from_rgbs.{i}"
            if f"{p}.downsample.kernel" in sd:
                down = fir(inverse_haar(sd, p + ".iwt", bands), sd[p + ".downsample.kernel"], down=2,
                           pad=(1, 1, 1, 1))
                bands = haar(sd, p + ".dwt", down)
            y = conv_layer(sd, p + ".conv", bands)
            out = y if out is None else out + y
            if i < n - 1:
                out = conv_layer(sd, f"convs.{i}.conv2", conv_layer(sd, f"convs.{i}.conv1", out), downsample=True)
    else:
        out = conv_layer(sd, "convs.0", img)
        i = 1
        while f"convs.{i}.conv1.0.weight" in sd:
            y = conv_layer(sd, f"convs.{i}.conv2", conv_layer(sd, f"convs.{i}.conv1", out), downsample=True)
            skip = conv_layer(sd, f"convs.{i}.skip", out, downsample=True, act=False)
            out = (y + skip) / SQRT2
            i += 1
    batch, c, h, w = out.shape
    group = min(batch, 4)
    std = out.view(group, -1, 1, c, h, w)
    std = torch.sqrt(std.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
    out = torch.cat([out, std.repeat(group, 1, h, w)], 1)
    out = conv_layer(sd, "final_conv", out).view(batch, -1)
    return linear(sd, "final_linear.1", linear(sd, "final_linear.0", out, act=True))
