"""The command line. The only module that imports click or tqdm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from . import __version__
from .core import ENGINES, compare_images
from .errors import ConfigError, IqevalError
from .prepare import ALPHAS, COLORS, KERNELS, Options
from .report import dumps, format_pair, pair_json

EXIT_OK = 0
EXIT_ITEMS_FAILED = 1
EXIT_USAGE = 2


class InputFailure(click.ClickException):
    """Bad input: one line on stderr, exit code 1."""

    exit_code = EXIT_ITEMS_FAILED


def _write_text(path: str, text: str) -> None:
    if path == "-":
        click.echo(text, nl=False)
    else:
        Path(path).write_text(text, encoding="utf-8")


def _options(**kw: Any) -> Options:
    try:
        return Options(**kw)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="iqeval")
def cli() -> None:
    """Full-reference image quality: SSIM, PSNR and MSE of predictions against ground truth."""


@cli.command()
@click.argument("pred", type=click.Path(path_type=Path))
@click.argument("gt", type=click.Path(path_type=Path))
@click.option("--metrics", "metric_names", default="ssim,psnr,mse", show_default=True, help="Comma-separated metrics.")
@click.option(
    "--color",
    type=click.Choice(COLORS),
    default="rgb",
    show_default=True,
    help="rgb: channels as stored; y: BT.601 luma (MATLAB rgb2ycbcr); gray: skimage rgb2gray.",
)
@click.option(
    "--crop-border", type=click.IntRange(min=0), default=0, show_default=True, help="Pixels cut from each edge."
)
@click.option(
    "--ssim-kernel",
    type=click.Choice(KERNELS),
    default="uniform",
    show_default=True,
    help="uniform: skimage default 7x7; gaussian: Wang et al. 11x11, sigma 1.5.",
)
@click.option("--win-size", type=int, default=None, help="Odd SSIM window side (default 7, or 11 for gaussian).")
@click.option("--sigma", type=float, default=1.5, show_default=True, help="Gaussian SSIM sigma.")
@click.option("--data-range", type=float, default=None, help="Override the range implied by the dtype (e.g. 4095).")
@click.option(
    "--alpha",
    type=click.Choice(ALPHAS),
    default="drop",
    show_default=True,
    help="RGBA policy: drop alpha, include it as a channel, or refuse.",
)
@click.option(
    "--engine", type=click.Choice(ENGINES), default="fast", show_default=True, help="skimage: reference path."
)
@click.option("--json", "json_path", default=None, metavar="PATH", help="Write a JSON report ('-' for stdout).")
def compare(
    pred: Path,
    gt: Path,
    metric_names: str,
    color: str,
    crop_border: int,
    ssim_kernel: str,
    win_size: int | None,
    sigma: float,
    data_range: float | None,
    alpha: str,
    engine: str,
    json_path: str | None,
) -> None:
    """Score PRED against GT (two image files)."""
    options = _options(
        metrics=metric_names,
        color=color,
        crop_border=crop_border,
        ssim_kernel=ssim_kernel,
        win_size=win_size,
        sigma=sigma,
        data_range=data_range,
        alpha=alpha,
    )
    try:
        result = compare_images(pred, gt, options=options, engine=engine)
    except IqevalError as exc:
        raise InputFailure(str(exc)) from exc
    if json_path is not None:
        _write_text(json_path, dumps(pair_json(result, options.as_dict(), __version__)))
    if json_path != "-":
        click.echo(format_pair(result), nl=False)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="iqeval")


if __name__ == "__main__":  # pragma: no cover
    main()
