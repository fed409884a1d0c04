"""The command line. The only module that imports click or tqdm."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import click

from . import __version__
from .aggregate import check_weight_coverage, check_weights, summarize_run
from .core import ENGINES, compare_images
from .discovery import SEQUENCE_POLICIES, Item, Pairing, Source, find_pairs
from .errors import BaselineError, ConfigError, IqevalError, OutputError
from .evaluate import CompareConfig, ItemResult, compile_group_by, evaluate, item_keys
from .gate import (
    Check,
    baseline_checks,
    check_baseline_metrics,
    check_comparable,
    check_gate_inputs,
    check_thresholds,
    compare_reports,
    format_changes,
    load_report,
    parse_max_drop,
    parse_threshold,
    presence,
    presence_check,
)
from .html import html_report
from .io import DEFAULT_MAX_PIXELS, is_image_path, is_video_path, read_image
from .maps import Visual, map_files, map_names, visual, visual_of, worst
from .metrics import METRICS, parse_metrics
from .outputs import Staging, check_targets
from .parallel import check_scheduler_address
from .prepare import ALPHAS, COLORS, KERNELS, Options
from .report import (
    batch_json,
    dumps,
    format_pair,
    format_summary,
    frames_csv,
    item_dict,
    items_csv,
    junit_xml,
    markdown_summary,
    pair_json,
    printable,
)

EXIT_OK = 0
EXIT_ITEMS_FAILED = 1
EXIT_USAGE = 2
EXIT_UNMATCHED = 3
EXIT_GATE = 4
EXIT_OUTPUT = 5
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

T = TypeVar("T")

# columns every items CSV has; a --group-by name must not repeat one
FIXED_COLUMNS = (
    "id",
    "kind",
    "status",
    "n_frames",
    "width",
    "height",
    "data_range",
    "pred",
    "gt",
    "error",
    "read_as",
    "frame",
)


class InputFailure(click.ClickException):
    """Bad input: one line on stderr, exit code 1."""

    exit_code = EXIT_ITEMS_FAILED


class OutputFailure(click.ClickException):
    """A report cannot be written at the end of a run: one line, exit code 5."""

    exit_code = EXIT_OUTPUT


class Terminated(BaseException):
    """SIGTERM arrived: unwound like Ctrl-C, so workers stop and no half report stays."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _usage(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except (ConfigError, BaselineError, OutputError) as exc:
        raise click.UsageError(printable(str(exc))) from exc


def _progress(results: Iterable[ItemResult], total: int, quiet: bool) -> Iterator[ItemResult]:
    from tqdm import tqdm

    # no monitor thread: a second thread would make the process pool fall back
    # from fork to the slower forkserver start
    tqdm.monitor_interval = 0
    # disable=None: a bar only when stderr is a terminal, so logs and pipes stay clean
    bar = tqdm(results, total=total, unit="item", file=sys.stderr, disable=True if quiet else None, dynamic_ncols=True)
    try:
        yield from bar
    finally:
        bar.close()


def _load_weights(path: str | None) -> dict[str, dict[str, float]] | None:
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.UsageError(f"--weights {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise click.UsageError(f"--weights {path}: not a UTF-8 text file") from None
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"--weights {path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    except RecursionError:
        raise click.UsageError(f"--weights {path}: nested too deeply") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise click.UsageError(f'--weights {path}: expected {{"KEY": {{"VALUE": WEIGHT, ...}}}}')
    return data


def _warn(message: str, quiet: bool) -> None:
    if not quiet:
        click.echo(f"Warning: {printable(message)}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
@click.option("--json", "json_path", default=None, metavar="PATH", help="Write the JSON report ('-' for stdout).")
@click.option("--csv", "csv_path", default=None, metavar="PATH", help="Write one CSV row per item ('-' for stdout).")
@click.option("--frames-csv", "frames_path", default=None, metavar="PATH", help="Write one CSV row per frame.")
@click.option(
    "--group-by", default=None, metavar="REGEX", help="Named groups of this regex on the item path become keys."
)
@click.option(
    "--weights",
    "weights_path",
    default=None,
    metavar="FILE",
    help='JSON {"KEY": {"VALUE": weight}} for a weighted overall.',
)
@click.option("--strict", is_flag=True, help="Files found on one side only fail the run (exit 3).")
@click.option(
    "--sequences",
    type=click.Choice(SEQUENCE_POLICIES),
    default=None,
    help="Folders of numbered images: auto (one frame size and contiguous numbers, or a video of the same "
    "name on the other side), never, or always.  [default: auto]",
)
@click.option("--no-frame-folders", is_flag=True, help="Same as --sequences never.")
@click.option("--truncate-frames", is_flag=True, help="Score the common frames of sequences of different lengths.")
@click.option(
    "--fail-under",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Gate on the overall mean; METRIC[KEY=VALUE]=V scopes it (KEY=* for every value).",
)
@click.option(
    "--item-floor", multiple=True, metavar="METRIC=VALUE", help="Gate on every item; lists offenders worst first."
)
@click.option(
    "--baseline", "baseline_path", default=None, metavar="OLD.json", help="Compare with an earlier --json report."
)
@click.option(
    "--max-drop",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Largest allowed drop against --baseline (overall, per key value, per item).",
)
@click.option(
    "--allow-missing",
    is_flag=True,
    help="Items of --baseline that are missing or failed now do not fail the gate.",
)
@click.option(
    "--junit",
    "junit_path",
    default=None,
    metavar="PATH",
    help="Write JUnit XML: a testcase per item and per gate condition.",
)
@click.option(
    "--markdown",
    "markdown_path",
    default=None,
    metavar="PATH",
    help="Write a Markdown summary (e.g. $GITHUB_STEP_SUMMARY).",
)
@click.option(
    "--maps",
    "maps_dir",
    default=None,
    metavar="DIR",
    help="Write SSIM and error maps (PNG): the pair, or the --worst items.",
)
@click.option(
    "--markdown-append",
    "markdown_append",
    default=None,
    metavar="PATH",
    help="Append the Markdown summary to PATH (e.g. $GITHUB_STEP_SUMMARY).",
)
@click.option("--html", "html_path", default=None, metavar="PATH", help="Write a self-contained HTML report.")
@click.option(
    "--worst",
    "worst_n",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Items that get maps and thumbnails.",
)
@click.option(
    "-j", "--jobs", type=click.IntRange(min=0), default=0, show_default=True, help="Worker processes (0: all CPUs)."
)
@click.option(
    "--scheduler", default=None, metavar="ADDRESS", help="Run items on this Dask scheduler (tcp://host:8786)."
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Largest image or video frame decoded (width x height); 0: no limit.",
)
@click.option("--items", "show_items", is_flag=True, help="List every item in the summary table.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
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
    csv_path: str | None,
    frames_path: str | None,
    group_by: str | None,
    weights_path: str | None,
    strict: bool,
    sequences: str | None,
    no_frame_folders: bool,
    truncate_frames: bool,
    fail_under: tuple[str, ...],
    item_floor: tuple[str, ...],
    baseline_path: str | None,
    max_drop: tuple[str, ...],
    allow_missing: bool,
    junit_path: str | None,
    markdown_path: str | None,
    markdown_append: str | None,
    maps_dir: str | None,
    html_path: str | None,
    worst_n: int,
    jobs: int,
    scheduler: str | None,
    max_pixels: int,
    show_items: bool,
    quiet: bool,
) -> None:
    """Score PRED against GT: two images, two videos, or two folders walked recursively.

    Folders pair their items by relative path without extension; see the README
    for the rules, the report schemas and the exit codes.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    staging = Staging()
    try:
        _compare(staging, **{k: v for k, v in locals().items() if k != "staging"})
    except (KeyboardInterrupt, Terminated) as exc:
        staging.discard()
        click.echo("Interrupted: no report written.", err=True)
        sys.exit(EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED)
    finally:
        staging.discard()


def _compare(
    staging: Staging,
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
    csv_path: str | None,
    frames_path: str | None,
    group_by: str | None,
    weights_path: str | None,
    strict: bool,
    sequences: str | None,
    no_frame_folders: bool,
    truncate_frames: bool,
    fail_under: tuple[str, ...],
    item_floor: tuple[str, ...],
    baseline_path: str | None,
    max_drop: tuple[str, ...],
    allow_missing: bool,
    junit_path: str | None,
    markdown_path: str | None,
    markdown_append: str | None,
    maps_dir: str | None,
    html_path: str | None,
    worst_n: int,
    jobs: int,
    scheduler: str | None,
    max_pixels: int,
    show_items: bool,
    quiet: bool,
) -> None:
    # --- everything that can be refused is refused here, before any file is decoded
    if no_frame_folders and sequences not in (None, "never"):
        raise click.UsageError(f"--no-frame-folders contradicts --sequences {sequences}")
    policy = "never" if no_frame_folders else (sequences or "auto")
    options = _usage(
        lambda: Options(
            metrics=parse_metrics(metric_names),
            color=color,
            crop_border=crop_border,
            ssim_kernel=ssim_kernel,
            win_size=win_size,
            sigma=sigma,
            data_range=data_range,
            alpha=alpha,
        )
    )
    thresholds = _usage(
        lambda: [parse_threshold(t) for t in fail_under] + [parse_threshold(t, per_item=True) for t in item_floor]
    )
    drops = _usage(lambda: parse_max_drop(max_drop))
    if drops and baseline_path is None:
        raise click.UsageError("--max-drop needs --baseline")
    if allow_missing and baseline_path is None:
        raise click.UsageError("--allow-missing needs --baseline")
    key_names: tuple[str, ...] = ("group",)
    if group_by is not None:
        key_names = tuple(_usage(lambda: compile_group_by(group_by)).groupindex)
    clash = [k for k in key_names if k in FIXED_COLUMNS or k in METRICS]
    if clash:
        raise click.UsageError(f"--group-by names a key {clash[0]!r}, which is also a report column; rename the group")
    _usage(lambda: check_gate_inputs(thresholds, drops, options.metrics, key_names))
    report_paths = [
        ("--json", json_path),
        ("--csv", csv_path),
        ("--frames-csv", frames_path),
        ("--junit", junit_path),
        ("--markdown", markdown_path),
        ("--markdown-append", markdown_append),
        ("--html", html_path),
    ]
    _usage(lambda: check_targets(report_paths, [("--maps", maps_dir)]))
    if scheduler is not None:
        _usage(lambda: check_scheduler_address(scheduler))
    baseline = _usage(lambda: load_report(baseline_path)) if baseline_path else None
    weights = _load_weights(weights_path)
    if weights is not None:
        _usage(lambda: check_weights(weights, key_names))
    limit = max_pixels or None
    config = CompareConfig(
        pred=pred,
        gt=gt,
        options=options,
        engine=engine,
        sequences=policy,
        truncate_frames=truncate_frames,
        group_by=group_by,
        jobs=jobs,
        scheduler=scheduler,
        max_pixels=limit,
    )
    if baseline is not None:
        _usage(lambda: check_comparable(baseline, {"config": config.as_dict()}, f"baseline {baseline_path}"))
        _usage(lambda: check_baseline_metrics(baseline, drops, f"baseline {baseline_path}"))
    for path in (pred, gt):
        if not path.exists():
            raise InputFailure(f"{printable(str(path))}: no such file or directory")
    if pred.is_dir() != gt.is_dir():
        file_, dir_ = (gt, pred) if pred.is_dir() else (pred, gt)
        raise click.UsageError(f"{dir_} is a folder but {file_} is a file; give two files or two folders")

    batch_only = (
        csv_path or frames_path or junit_path or markdown_path or markdown_append or html_path or thresholds or baseline
    )
    if not pred.is_dir() and is_image_path(pred) and is_image_path(gt) and not batch_only:
        _single_pair(staging, pred, gt, options, engine, json_path, maps_dir, limit, quiet)
        return

    if pred.is_dir():
        pairing = find_pairs(pred, gt, sequences=policy)
    else:
        p_src, g_src = _source(pred), _source(gt)
        if p_src.kind != g_src.kind:
            raise InputFailure(
                f"cannot pair {printable(str(pred))} ({p_src.kind}) with {printable(str(gt))} ({g_src.kind})"
            )
        pairing = Pairing(items=(Item(pred.stem, p_src, g_src, decision=p_src.kind),), pred_only=(), gt_only=())
    if weights is not None:
        _usage(lambda: check_weight_coverage(weights, [item_keys(i.id, group_by) or {} for i in pairing.items]))

    for note in pairing.notes:
        _warn(note, quiet)
    if pairing.pred_only or pairing.gt_only:
        parts = []
        if pairing.pred_only:
            parts.append(f"{len(pairing.pred_only)} only in {pred} (first: {pairing.pred_only[0]})")
        if pairing.gt_only:
            parts.append(f"{len(pairing.gt_only)} only in {gt} (first: {pairing.gt_only[0]})")
        _warn("unmatched files: " + "; ".join(parts), quiet)
    if (pairing.sequence_folders or pairing.rejected_folders) and not quiet:
        click.echo(
            f"Note: {_count(pairing.sequence_folders, 'folder')} of numbered images scored as frame sequences, "
            f"{pairing.rejected_folders} as separate images (--sequences {policy}; each item's read_as says why)",
            err=True,
        )
    if not pairing.items:
        raise InputFailure(f"no pairs found between {printable(str(pred))} and {printable(str(gt))}")

    results = _usage(lambda: list(_progress(evaluate(config, pairing.items), len(pairing.items), quiet)))
    summary = _usage(lambda: summarize_run(results, options.metrics, key_names, weights))

    for r in results:
        for w in r.warnings:
            _warn(f"{r.id}: {w}", quiet)
    if summary.group_by_unmatched:
        _warn(
            f"--group-by matched no key in {len(summary.group_by_unmatched)} items "
            f"(first: {summary.group_by_unmatched[0]}); they count only in the overall",
            quiet,
        )

    doc = batch_json(results, summary, pairing, config.as_dict(), __version__)
    checks: list[Check] = check_thresholds(doc, thresholds)
    if baseline is not None:
        checks += baseline_checks(compare_reports(baseline, doc), drops or {})
        items_now = presence(baseline, doc)
        if not allow_missing:
            checks.append(presence_check(items_now))
        if items_now.shared == 0:
            _warn(f"this run and baseline {baseline_path} share no scored item", quiet)

    try:
        if json_path is not None:
            staging.add("--json", json_path, dumps(doc))
        if junit_path is not None:
            staging.add("--junit", junit_path, junit_xml(doc, checks))
        markdown = markdown_summary(doc, checks) if markdown_path or markdown_append else ""
        if markdown_path is not None:
            staging.add("--markdown", markdown_path, markdown)
        if markdown_append is not None:
            staging.add("--markdown-append", markdown_append, markdown, append=True)
        if maps_dir is not None or html_path is not None:
            visuals = _visuals(results, options, worst_n, quiet, limit)
            if maps_dir is not None:
                names = map_names([r.id for r, _ in visuals])
                for (_, v), name in zip(visuals, names, strict=True):
                    for file_name, png in map_files(v, name):
                        staging.add_file("--maps", Path(maps_dir) / file_name, png)
            if html_path is not None:
                staging.add(
                    "--html", html_path, html_report(doc, checks, [(item_dict(r, frames=False), v) for r, v in visuals])
                )
        if csv_path is not None:
            staging.add("--csv", csv_path, items_csv(results, options.metrics, key_names))
        if frames_path is not None:
            staging.add("--frames-csv", frames_path, frames_csv(results, options.metrics))
        staging.commit(lambda text: click.echo(text, nl=False))
    except (OutputError, OSError) as exc:
        staging.discard()
        raise OutputFailure(f"{printable(str(exc))}; no report was replaced") from exc

    outputs = [p for _, p in report_paths if p is not None]
    if "-" not in outputs and not quiet:
        click.echo(format_summary(results, summary, pairing, show_items=show_items), nl=False)
    for r in results:
        if not r.ok:
            click.echo(f"Error: {printable(r.id)}: {printable(str(r.error))}", err=True)
    for c in checks:
        if not c.passed:
            click.echo(f"Gate failed: {printable(c.message)}", err=True)
    if checks and all(c.passed for c in checks) and not quiet:
        click.echo(f"Gate passed: {_count(len(checks), 'condition')}", err=True)

    if summary.n_failed:
        sys.exit(EXIT_ITEMS_FAILED)
    if strict and (pairing.pred_only or pairing.gt_only or pairing.notes):
        click.echo(
            f"Error: --strict: {len(pairing.pred_only)} pred-only and {len(pairing.gt_only)} gt-only files"
            + (f", {len(pairing.notes)} folders not read" if pairing.notes else ""),
            err=True,
        )
        sys.exit(EXIT_UNMATCHED)
    if any(not c.passed for c in checks):
        sys.exit(EXIT_GATE)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _single_pair(
    staging: Staging,
    pred: Path,
    gt: Path,
    options: Options,
    engine: str,
    json_path: str | None,
    maps_dir: str | None,
    max_pixels: int | None,
    quiet: bool,
) -> None:
    try:
        result = compare_images(pred, gt, options=options, engine=engine, max_pixels=max_pixels)
        files: list[tuple[Path, bytes]] = []
        if maps_dir is not None:
            p, g = read_image(pred, max_pixels=max_pixels), read_image(gt, max_pixels=max_pixels)
            v = visual_of(p, g, options, str(pred), str(gt))
            files = [(Path(maps_dir) / f, png) for f, png in map_files(v, map_names([pred.stem])[0])]
    except IqevalError as exc:
        raise InputFailure(printable(str(exc))) from exc
    try:
        if json_path is not None:
            staging.add("--json", json_path, dumps(pair_json(result, options.as_dict(), __version__)))
        for path, png in files:
            staging.add_file("--maps", path, png)
        staging.commit(lambda text: click.echo(text, nl=False))
    except (OutputError, OSError) as exc:
        staging.discard()
        raise OutputFailure(f"{printable(str(exc))}; no report was replaced") from exc
    if json_path != "-" and not quiet:
        click.echo(format_pair(result), nl=False)
    if not quiet:
        for path, _ in files:
            click.echo(f"wrote {printable(str(path))}", err=True)


@cli.command()
@click.argument("old", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--max-drop", multiple=True, metavar="METRIC=VALUE", help="Largest allowed drop; more fails with exit 4.")
@click.option("--allow-missing", is_flag=True, help="Items of OLD missing or failed in NEW do not fail (exit 4).")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True, help="Item drops to list.")
def diff(old: Path, new: Path, max_drop: tuple[str, ...], allow_missing: bool, limit: int) -> None:
    """Compare two --json reports (OLD is the baseline) without recomputing."""
    drops = _usage(lambda: parse_max_drop(max_drop))
    old_doc = _usage(lambda: load_report(old))
    new_doc = _usage(lambda: load_report(new))
    _usage(lambda: check_comparable(old_doc, new_doc, str(old)))
    _usage(lambda: check_baseline_metrics(old_doc, drops, str(old)))
    _usage(lambda: check_baseline_metrics(new_doc, drops, str(new)))
    changes = compare_reports(old_doc, new_doc)
    items = presence(old_doc, new_doc)
    if items.shared == 0:
        click.echo(f"Warning: {printable(str(old))} and {printable(str(new))} share no scored item", err=True)
    click.echo(format_changes(changes, drops, limit, items), nl=False)
    checks = baseline_checks(changes, drops)
    if not allow_missing:
        checks.append(presence_check(items))
    failed = [c for c in checks if not c.passed]
    for c in failed:
        click.echo(f"Gate failed: {printable(c.message)}", err=True)
    if failed:
        sys.exit(EXIT_GATE)


def _visuals(
    results: list[ItemResult], options: Options, n: int, quiet: bool, max_pixels: int | None
) -> list[tuple[ItemResult, Visual]]:
    out = []
    for r in worst(results, n):
        try:
            out.append((r, visual(r, options, max_pixels)))
        except (IqevalError, OSError, IndexError) as exc:
            _warn(f"{r.id}: no maps: {exc}", quiet)
    return out


def _source(path: Path) -> Source:
    return Source(path, "video" if is_video_path(path) else "image")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="iqeval")


if __name__ == "__main__":  # pragma: no cover
    main()
