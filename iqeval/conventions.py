"""Conventions: named, documented bundles of every setting that shapes the numbers.

"My PSNR doesn't match the paper" is almost always a convention: which luma,
rounded or not, which SSIM window, which covariance, what happens at the
borders, whether the image is downsampled first, how much border is cropped.
A :class:`Convention` names one peer's choices; :func:`resolve` applies it and
lets explicit options override it, saying which. The name and every resolved
setting are written into each report, and a baseline computed under another
convention is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Convention:
    """One peer's way of computing SSIM, PSNR and MS-SSIM."""

    name: str
    summary: str
    reference: str  # project, function, version it reproduces
    tested: str  # how the tests hold it to that reference
    sets: Mapping[str, Any] = field(default_factory=dict)
    notes: str = ""


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention(
            "skimage",
            "channels as stored, 7x7 box window, sample covariance, valid interior",
            "scikit-image >= 0.22 structural_similarity, peak_signal_noise_ratio (defaults); "
            "MS-SSIM as pytorch-msssim 1.0 ms_ssim",
            "skimage called directly, every option, 1e-9; pytorch-msssim with a float64 window, 1e-12",
            {},
        ),
        Convention(
            "basicsr",
            "BT.601 Y (16-235, unrounded float), 11x11 Gaussian sigma 1.5, population covariance, crop = scale",
            "BasicSR calculate_psnr / calculate_ssim with test_y_channel=True (basicsr 1.4)",
            "BasicSR's formula written out in the tests (cv2-free), 1e-9",
            {"color": "y", "ssim_kernel": "gaussian", "gray_as_y": "map"},
            "A gray file counts as R=G=B, as BasicSR's pipeline reads every file as 3 channels: Y = 16 + 219 g / 255.",
        ),
        Convention(
            "matlab",
            "rgb2ycbcr Y rounded to uint8, gray used as it is, Wang's ssim_index (11x11 Gaussian, valid), crop = scale",
            "MATLAB SR evaluation scripts (rgb2ycbcr on uint8, ssim_index.m, PSNR on Y)",
            "MATLAB's arithmetic written out in the tests (rounding half away from zero), 1e-9",
            {"color": "y", "y_rounding": "half_away", "gray_as_y": "as_is", "ssim_kernel": "gaussian", "msssim": "tf"},
            "MS-SSIM as Wang's msssim.m: 2x2 average with symmetric extension of odd sizes.",
        ),
        Convention(
            "tf",
            "channels as stored, 11x11 Gaussian sigma 1.5, valid; MS-SSIM pads odd sizes at the end",
            "TensorFlow tf.image.ssim, tf.image.psnr, tf.image.ssim_multiscale (TF 2.x)",
            "TF's algorithm written out in the tests, 1e-9 (TF itself computes in float32: about 1e-6 apart)",
            {"ssim_kernel": "gaussian", "msssim": "tf"},
        ),
        Convention(
            "torchmetrics",
            "channels as stored, 11x11 Gaussian sigma 1.5, reflect-padded borders kept in the mean",
            "torchmetrics >= 1.4.2 structural_similarity_index_measure, peak_signal_noise_ratio, "
            "multiscale_structural_similarity_index_measure",
            "torchmetrics called directly (CPU PyTorch, float64), 1e-9",
            {"ssim_kernel": "gaussian", "ssim_border": "keep", "msssim": "torchmetrics"},
            "torchmetrics guesses the data range from the pixels when data_range is not given; iqeval takes it "
            "from the dtype, so pass torchmetrics the same data_range to compare.",
        ),
        Convention(
            "piq",
            "channels as stored, downsampled by max(1, round(min(H, W) / 256)), 11x11 Gaussian, valid",
            "piq 0.8 ssim(downsample=True), psnr, multi_scale_ssim",
            "piq's algorithm written out in the tests, 1e-9",
            {"ssim_kernel": "gaussian", "downsample": "auto", "msssim": "piq"},
            "piq adds 1e-8 to the MSE, so identical images score 80 dB there; iqeval reports inf.",
        ),
        Convention(
            "pyiqa",
            "SSIM on YIQ's Y rounded to the 8-bit grid, 11x11 Gaussian, valid, negative contrast clipped; PSNR on RGB",
            "pyiqa (IQA-PyTorch) 0.1 metrics 'ssim', 'psnr' and 'ms_ssim' with their default options",
            "pyiqa's algorithm written out in the tests, 1e-9",
            {
                "color": "yiq",
                "y_rounding": "half_even",
                "ssim_kernel": "gaussian",
                "cs_relu": True,
                "msssim": "pyiqa",
                "psnr_color": "rgb",
            },
            "pyiqa adds 1e-8 to the MSE, so identical images score 80 dB there; iqeval reports inf.",
        ),
        Convention(
            "ffmpeg",
            "Y, U and V planes of YUV video at the file's bit depth, pooled by area; 8x8 blocks at stride 4",
            "FFmpeg's ssim and psnr filters (libavfilter vf_ssim, vf_psnr): the 'All' and 'average' values",
            "FFmpeg's filters run live through PyAV on 8- and 10-bit clips, per frame: SSIM 2e-6, PSNR 1e-5 dB "
            "(FFmpeg prints 6 decimals, sums 8-bit SSIM and keeps MSE in float32)",
            {"color": "yuv", "ssim_kernel": "ffmpeg"},
            "For Y only (PSNR-Y, SSIM-Y as codec people report them) add --color y. Still images and RGB "
            "videos have no YUV planes: pass --color rgb to score their channels with FFmpeg's SSIM blocks.",
        ),
    )
}
"""Every convention, by name."""


def resolve(
    convention: str, explicit: Mapping[str, Any], known: frozenset[str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The option values of a convention with explicit options on top, and what they override.

    ``known`` are the option names; ``scale`` sets the border crop unless
    ``crop_border`` is given.
    """
    if convention not in CONVENTIONS:
        raise ConfigError(f"convention={convention!r} is not one of {', '.join(CONVENTIONS)}")
    unknown = sorted(set(explicit) - known)
    if unknown:
        raise TypeError(f"unknown option {unknown[0]!r}; options are: {', '.join(sorted(known))}")
    sets = dict(CONVENTIONS[convention].sets)
    overrides = tuple(
        f"{k}={explicit[k]!r} overrides convention {convention!r} ({k}={sets[k]!r})"
        for k in sorted(explicit)
        if k in sets and explicit[k] != sets[k]
    )
    kwargs = {**sets, **{k: v for k, v in explicit.items() if v is not None}, "convention": convention}
    if kwargs.get("scale") and "crop_border" not in explicit:
        kwargs["crop_border"] = kwargs["scale"]
    return kwargs, overrides


def table() -> str:
    """The conventions as a text table: what each sets and which reference it is tested against."""
    lines = []
    for c in CONVENTIONS.values():
        sets = ", ".join(f"{k}={v!r}" for k, v in c.sets.items()) or "(the defaults)"
        lines += [
            c.name,
            f"  {c.summary}",
            f"  sets:       {sets}",
            f"  reproduces: {c.reference}",
            f"  tested:     {c.tested}",
        ]
        if c.notes:
            lines.append(f"  note:       {c.notes}")
        lines.append("")
    lines.append(
        "Every convention: data range from the dtype; --scale N crops N pixels from each edge unless "
        "--crop-border is given; an explicit option overrides the convention, and the run says which."
    )
    return "\n".join(lines) + "\n"
