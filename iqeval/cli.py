"""The command line. The only module that imports click or tqdm.

It parses options into a :class:`~iqeval.evaluate.CompareConfig`, checks the
output paths, calls :func:`iqeval.run`, and hands the :class:`~iqeval.results.Run`
to the writers in :data:`WRITERS`. Library messages name Python parameters
(``data_range=``); :func:`flags` turns them into the options people typed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ._version import __version__
from .conventions import CONVENTIONS
from .conventions import table as conventions_table
from .core import ENGINES
from .discovery import SEQUENCE_POLICIES
from .errors import BaselineError, ConfigError, IqevalError, OutputError
from .evaluate import CompareConfig, evaluate
from .gate import (
    GateConfig,
    baseline_checks,
    check_baseline_metrics,
    check_comparable,
    compare_runs,
    load_report,
    parse_max_drop,
    parse_threshold,
    presence,
    presence_check,
)
from .io import DEFAULT_MAX_PIXELS, RawFormat, is_image_path
from .metrics import parse_metrics, parse_pool
from .outputs import Staging, check_targets
from .prepare import ALPHAS, COLORS, KERNELS, OUT_OF_RANGE, Options
from .report import (
    format_changes,
    format_pair,
    format_summary,
    frames_csv,
    items_csv,
    json_report,
    junit_xml,
    markdown_summary,
    method_table,
    paired_text,
    printable,
)
from .results import ItemResult, Run
from .runner import run
from .stats import plural

if TYPE_CHECKING:  # the pictures' modules load when pictures are asked for
    from .maps import Visual

EXIT_OK = 0
EXIT_ITEMS_FAILED = 1
EXIT_USAGE = 2
EXIT_UNMATCHED = 3
EXIT_GATE = 4
EXIT_OUTPUT = 5
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

T = TypeVar("T")


@dataclass(frozen=True)
class Writer:
    """One report format: its option, how it renders a run, and whether it appends."""

    option: str
    dest: str  # the click parameter that holds its path
    render: Callable[[Run, Sequence[tuple[ItemResult, Visual]], str], str]
    append: bool = False
    needs_visuals: bool = False


def _table_format(path: str) -> str:
    return {".md": "md", ".tex": "tex", ".csv": "csv"}.get(Path(path).suffix.lower(), "md")


def _html(result: Run, visuals: Sequence[tuple[ItemResult, Visual]]) -> str:
    from .html import html_report  # loaded only for --html

    return html_report(result, visuals=visuals)


WRITERS: tuple[Writer, ...] = (
    Writer("--json", "json_path", lambda r, v, p: json_report(r)),
    Writer("--csv", "csv_path", lambda r, v, p: items_csv(r)),
    Writer("--frames-csv", "frames_path", lambda r, v, p: frames_csv(r)),
    Writer("--junit", "junit_path", lambda r, v, p: junit_xml(r)),
    Writer("--markdown", "markdown_path", lambda r, v, p: markdown_summary(r)),
    Writer("--markdown-append", "markdown_append", lambda r, v, p: markdown_summary(r), append=True),
    Writer("--html", "html_path", lambda r, v, p: _html(r, v), needs_visuals=True),
    Writer("--table", "table_path", lambda r, v, p: method_table(r, _table_format(p))),
)
"""Every report format. A new format is one function and one row here (and its click option)."""

_PARAMS = re.compile(
    r"\b(data_range|win_size|max_pixels|group_by|weights|max_drop|item_floor|scheduler|jobs|metrics|sequences"
    r"|color|alpha|crop_border|sigma|ssim_kernel|engine|baseline|scale|mod_crop|convention|pred_name)=(?:'([^']*)'|([^\s,;:)']+))?"
)


def flags(message: str) -> str:
    """A library message in the words of the command line: ``data_range=`` becomes ``--data-range``."""

    def option(m: re.Match[str]) -> str:
        if m.string.startswith(" vs ", m.end()):  # a comparison of settings ("color='rgb' vs 'y'"), not advice
            return m[0]
        flag = "--" + m[1].replace("_", "-")
        value = m[2] if m[2] is not None else m[3]
        if value is None:
            return flag
        if m[2] is not None and not re.fullmatch(r"[A-Za-z0-9._,-]+", value):
            value = repr(value)
        return f"{flag} {value}"

    return _PARAMS.sub(option, message)


def say(message: str) -> str:
    """What the terminal shows for a library message: command-line words, no control characters."""
    return printable(flags(message))


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
        raise click.UsageError(say(str(exc))) from exc


class _Unseen:
    """The bar of a run that draws none."""

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class _Bar:
    """A progress callback for :func:`iqeval.run`: a tqdm bar on stderr when it is a terminal.

    It counts items, or frames (with frames/s) when the run has videos or frame
    folders: frames scored in this process as they are scored, frames scored
    in worker processes when their item arrives.
    """

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.frame_total: Callable[[], int | None] | None = None  # set when the run counts frames
        self.live = 0  # frames counted since the last item arrived

    def _open(self, total: int | None, unit: str) -> None:
        if not self.shown():  # nothing drawn: no need of tqdm's import (30 ms of a run's start)
            self.bar = _Unseen()
            return
        from tqdm import tqdm

        # no monitor thread: a second thread would make the process pool fall back
        # from fork to the slower forkserver start
        tqdm.monitor_interval = 0
        try:  # a terminal that reports no width (0) still gets a bar
            width = os.get_terminal_size(sys.stderr.fileno()).columns or 80
        except (OSError, ValueError, AttributeError):
            width = 80
        # narrow: the counts and the rate, which a bar would push off the line
        narrow = "{n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}]" if width < 60 else None
        # a bar only when stderr is a terminal (of any width), so logs and pipes stay clean
        self.bar = tqdm(
            total=total,
            unit=unit,
            file=sys.stderr,
            ncols=width if width >= 60 else 200,  # no bar to fit, so never cut the narrow line short
            dynamic_ncols=width >= 60,
            bar_format=narrow,
        )

    def begin_frames(self, total: Callable[[], int | None]) -> None:
        self.frame_total = total

    def shown(self) -> bool:
        """Whether a bar is drawn: not ``--quiet``, and stderr is a terminal."""
        try:
            return not self.quiet and sys.stderr.isatty()
        except (AttributeError, ValueError):
            return False

    def frames(self, n: int) -> None:
        if self.bar is not None:
            self.live += n
            self.bar.update(n)

    def __call__(self, done: int, total: int, result: ItemResult | None) -> None:
        if self.bar is None:
            if self.frame_total is None:
                self._open(total, "item")
            else:  # the frame total reads every video's header: only for a bar that is drawn
                self._open(self.frame_total() if self.shown() else None, "frame")
        if result is None:
            return
        if self.frame_total is not None:
            n = max(1, result.frame_scores.shape[0]) if result.kind == "sequence" else 1
            self.bar.update(max(0, n - self.live))
            self.live = 0
        else:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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
        click.echo(f"Warning: {say(message)}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="iqeval")
def cli() -> None:
    """Full-reference image quality: SSIM, PSNR and MSE of predictions against ground truth."""


COMPARE_EPILOG = """\b
Exit codes: 0 every item scored and every gate passed; 1 an item failed; 2 a usage
error; 3 --strict and files on one side only; 4 a gate failed; 5 a report could not
be written; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM)."""


@cli.command(epilog=COMPARE_EPILOG)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PRED GT]")
@click.option("--gt", "gt_path", default=None, type=click.Path(path_type=Path), help="The ground truth, with --pred.")
@click.option(
    "--pred",
    "pred_methods",
    multiple=True,
    metavar="NAME=DIR",
    help="A method's predictions against --gt; repeat it to compare methods in one run (key `method`).",
)
@click.option("--metrics", "metric_names", default="ssim,psnr,mse", show_default=True, help="Comma-separated metrics.")
@click.option(
    "--convention",
    type=click.Choice(list(CONVENTIONS)),
    default="skimage",
    show_default=True,
    help="A named bundle of every setting that shapes the numbers (see `iqeval conventions`); explicit "
    "options below override it.",
)
@click.option(
    "--color",
    type=click.Choice(COLORS),
    default=None,
    help="rgb: channels as stored; y: BT.601 luma (MATLAB rgb2ycbcr), or the decoded Y plane of two YUV "
    "videos; gray: skimage rgb2gray; yiq: full-range BT.601 luma (pyiqa); yuv: the Y, U and V planes of two "
    "YUV videos, pooled by area (FFmpeg).  [default: the convention's; skimage: rgb]",
)
@click.option(
    "--crop-border",
    type=click.IntRange(min=0),
    default=None,
    help="Pixels cut from each edge.  [default: --scale, else 0]",
)
@click.option(
    "--scale",
    type=click.IntRange(min=1),
    default=None,
    help="Super-resolution factor: the border crop follows it, and --mod-crop can use it.",
)
@click.option(
    "--mod-crop",
    type=click.Choice(["none", "gt"]),
    default="none",
    show_default=True,
    help="gt: cut a ground truth whose size is not a multiple of --scale down to one (MATLAB's modcrop), "
    "when that makes it the prediction's size; recorded.",
)
@click.option(
    "--ssim-kernel",
    type=click.Choice(KERNELS),
    default=None,
    help="uniform: skimage's 7x7; gaussian: Wang et al. 11x11, sigma 1.5; ffmpeg: FFmpeg's 8x8 blocks at stride 4 "
    "(integer samples).  [default: the convention's]",
)
@click.option("--win-size", type=int, default=None, help="Odd SSIM window side (default 7, or 11 for gaussian).")
@click.option("--sigma", type=float, default=None, help="Gaussian SSIM sigma.  [default: 1.5]")
@click.option("--data-range", type=float, default=None, help="Override the range implied by the dtype (e.g. 4095).")
@click.option(
    "--alpha",
    type=click.Choice(ALPHAS),
    default="drop",
    show_default=True,
    help="RGBA policy: drop alpha, include it as a channel, or refuse.",
)
@click.option(
    "--out-of-range",
    type=click.Choice(OUT_OF_RANGE),
    default="error",
    show_default=True,
    help="Float values outside [0, 1] (or integers above --data-range): an item error, or clip them (recorded).",
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
@click.option(
    "--pred-name",
    default=None,
    metavar="TEMPLATE",
    help="How a prediction is named after its ground truth: '{stem}_x4_SR' pairs 0801_x4_SR.png with 0801.png.",
)
@click.option("--truncate-frames", is_flag=True, help="Score the common frames of sequences of different lengths.")
@click.option(
    "--frame-offset",
    type=int,
    default=0,
    show_default=True,
    metavar="N",
    help="The prediction starts N frames later than the ground truth (negative: earlier); the frames "
    "before are skipped.",
)
@click.option(
    "--align",
    type=click.Choice(["none", "auto"]),
    default="none",
    show_default=True,
    help="auto: search --frame-offset ± --align-window for the offset whose first 8 frames give the highest "
    "PSNR, per sequence; the offset found is in the report.",
)
@click.option(
    "--align-window",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    metavar="N",
    help="How far --align auto searches, in frames either way.",
)
@click.option(
    "--pool",
    "pool_spec",
    default=None,
    metavar="POOL|METRIC=POOL,...",
    help="How a sequence's frames pool into its score: mean, harmonic (libvmaf's), min, max, median or pN "
    "(a percentile, e.g. p5); for every metric, or per metric (psnr=min,ssim=harmonic).  [default: mean]",
)
@click.option(
    "--video-size",
    default=None,
    metavar="WxH",
    help="The frame size of raw .yuv files (FFmpeg's -video_size), e.g. 1920x1080; needs --pix-fmt.",
)
@click.option(
    "--pix-fmt",
    default=None,
    metavar="FMT",
    help="The pixel format of raw .yuv files (FFmpeg's -pix_fmt): yuv420p, yuv420p10le, yuv444p, gray, ...",
)
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
    "--significance",
    type=float,
    default=None,
    metavar="ALPHA",
    help="A --max-drop regression must also be significant at this level (one-sided Wilcoxon on the items).",
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
    "--table",
    "table_path",
    default=None,
    metavar="PATH",
    help="Write the methods x datasets x metrics table: .md, .tex (booktabs) or .csv, by extension.",
)
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
def compare(**o: Any) -> None:
    """Score PRED against GT: two images, two videos, or two folders walked recursively.

    Folders pair their items by relative path without extension; see the README
    for the rules, the report schemas and the exit codes.
    """
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    staging = Staging()
    try:
        _compare(staging, o)
    except (KeyboardInterrupt, Terminated) as exc:
        staging.discard()
        click.echo("Interrupted: no report written.", err=True)
        sys.exit(EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED)
    finally:
        staging.discard()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _compare(staging: Staging, o: dict[str, Any]) -> None:
    _inputs(o)
    config = _config(o)
    bar = _Bar(o["quiet"])
    try:
        result = run(config, progress=bar, score=evaluate)
    except (ConfigError, BaselineError) as exc:
        raise click.UsageError(say(str(exc))) from exc
    except IqevalError as exc:
        raise InputFailure(say(str(exc))) from exc
    finally:
        bar.close()
    # the pair view: two image files, and nothing asked for but the pair
    batch_only = any(o[w.dest] for w in WRITERS if w.option != "--json") or config.gate.thresholds or o["baseline_path"]
    pair_view = (
        not o["methods"]
        and o["pred"].is_file()
        and is_image_path(o["pred"])
        and is_image_path(o["gt"])
        and not batch_only
    )
    if pair_view and not result.items[0].ok:
        raise InputFailure(say(str(result.items[0].error)))
    _notes(result, config, o)
    _write_reports(staging, result, config, o, pair_view)
    _finish(result, o, pair_view)


def _inputs(o: dict[str, Any]) -> None:
    """PRED GT, or --gt with one --pred NAME=DIR per method: sets o["pred"], o["gt"], o["methods"]."""
    paths, methods = o["paths"], []
    for text in o["pred_methods"]:
        name, sep, folder = text.partition("=")
        if not sep or not name or not folder:
            raise click.UsageError(f"--pred {text!r}: expected NAME=DIR, e.g. --pred edsr=out/edsr")
        methods.append((name, Path(folder)))
    if methods:
        if paths or o["gt_path"] is None:
            raise click.UsageError("--pred NAME=DIR needs --gt DIR and no PRED GT arguments")
        o["pred"], o["gt"] = methods[0][1], o["gt_path"]
    elif len(paths) != 2 or o["gt_path"] is not None:
        raise click.UsageError("give PRED and GT, or --gt DIR with --pred NAME=DIR for each method")
    else:
        o["pred"], o["gt"] = paths
    o["methods"] = tuple(methods)


def _config(o: dict[str, Any]) -> CompareConfig:
    """The run's configuration from the options; refuses, before any file is decoded, what it can."""
    if o["no_frame_folders"] and o["sequences"] not in (None, "never"):
        raise click.UsageError(f"--no-frame-folders contradicts --sequences {o['sequences']}")
    shaping = ("color", "crop_border", "scale", "ssim_kernel", "win_size", "sigma", "data_range")
    explicit = {k: o[k] for k in shaping if o[k] is not None}
    options = _usage(
        lambda: Options.resolve(
            o["convention"],
            metrics=parse_metrics(o["metric_names"]),
            alpha=o["alpha"],
            out_of_range=o["out_of_range"],
            mod_crop=o["mod_crop"],
            **explicit,
        )
    )
    for override in options.overrides:
        if not o["quiet"]:
            click.echo(f"Note: {say(override)}", err=True)
    thresholds = _usage(
        lambda: (
            tuple(parse_threshold(t) for t in o["fail_under"])
            + tuple(parse_threshold(t, per_item=True) for t in o["item_floor"])
        )
    )
    drops = _usage(lambda: parse_max_drop(o["max_drop"]))
    baseline_path = o["baseline_path"]
    if drops and baseline_path is None:
        raise click.UsageError("--max-drop needs --baseline")
    if o["allow_missing"] and baseline_path is None:
        raise click.UsageError("--allow-missing needs --baseline")
    if o["significance"] is not None and not drops:
        raise click.UsageError("--significance needs --baseline and --max-drop")
    _usage(lambda: check_targets([(w.option, o[w.dest]) for w in WRITERS], [("--maps", o["maps_dir"])]))
    baseline = _usage(lambda: load_report(baseline_path)) if baseline_path else None
    return CompareConfig(
        pred=o["pred"],
        gt=o["gt"],
        methods=o["methods"],
        options=options,
        engine=o["engine"],
        sequences="never" if o["no_frame_folders"] else (o["sequences"] or "auto"),
        pred_name=o["pred_name"],
        truncate_frames=o["truncate_frames"],
        frame_offset=o["frame_offset"],
        align=o["align_window"] if o["align"] == "auto" else None,
        pool=_usage(lambda: parse_pool(o["pool_spec"], options.metrics)),
        raw=_raw_format(o["video_size"], o["pix_fmt"]),
        group_by=o["group_by"],
        jobs=o["jobs"],
        scheduler=o["scheduler"],
        max_pixels=o["max_pixels"] or None,
        weights=_load_weights(o["weights_path"]),
        gate=GateConfig(
            thresholds, drops, baseline, f"baseline {baseline_path}", o["allow_missing"], o["significance"]
        ),
    )


def _raw_format(video_size: str | None, pix_fmt: str | None) -> RawFormat | None:
    if video_size is None and pix_fmt is None:
        return None
    if video_size is None or pix_fmt is None:
        raise click.UsageError("--video-size and --pix-fmt go together: a raw .yuv file needs both")
    try:
        return RawFormat.parse(video_size, pix_fmt)
    except ValueError as exc:
        raise click.UsageError(say(str(exc))) from exc


def _notes(result: Run, config: CompareConfig, o: dict[str, Any]) -> None:
    """What the run says on stderr before the reports: notes, unmatched files, warnings."""
    quiet = o["quiet"]
    for note in result.discovery_notes:
        _warn(note, quiet)
    if result.pred_only or result.gt_only:
        parts = []
        if result.pred_only:
            parts.append(f"{len(result.pred_only)} only in {o['pred']} (first: {result.pred_only[0]})")
        if result.gt_only:
            parts.append(f"{len(result.gt_only)} only in {o['gt']} (first: {result.gt_only[0]})")
        _warn("unmatched files: " + "; ".join(parts), quiet)
    if (result.sequence_folders or result.separate_image_folders) and not quiet:
        click.echo(
            f"Note: {plural(result.sequence_folders, 'folder')} of numbered images scored as frame sequences, "
            f"{result.separate_image_folders} as separate images (--sequences {config.sequences}; each item's "
            "read_as says why)",
            err=True,
        )
    for r in result.items:
        for warning in r.warnings:
            _warn(f"{r.id}: {warning}", quiet)
    if result.summary.group_by_unmatched:
        unmatched = result.summary.group_by_unmatched
        _warn(
            f"--group-by matched no key in {plural(len(unmatched), 'item')} (first: {unmatched[0]}); "
            "they count only in the overall",
            quiet,
        )
    baseline = config.gate.baseline
    if baseline is not None and presence(baseline, result).shared == 0:
        _warn(f"this run and baseline {o['baseline_path']} share no scored item", quiet)


def _write_reports(staging: Staging, result: Run, config: CompareConfig, o: dict[str, Any], pair_view: bool) -> None:
    """Every report and map asked for: staged beside their targets, then committed together."""
    try:
        visuals: list[tuple[ItemResult, Visual]] = []
        if o["maps_dir"] is not None or any(o[w.dest] for w in WRITERS if w.needs_visuals):
            n = 1 if pair_view else o["worst_n"]
            visuals = _visuals(list(result.items), config.options, n, o["quiet"], config.max_pixels)
        for w in WRITERS:
            if o[w.dest] is not None:
                staging.add(w.option, o[w.dest], w.render(result, visuals, o[w.dest]), append=w.append)
        if o["maps_dir"] is not None:
            from .maps import map_files, map_names

            names = map_names([r.id for r, _ in visuals])
            for (_, v), name in zip(visuals, names, strict=True):
                for file_name, png in map_files(v, name):
                    staging.add_file("--maps", Path(o["maps_dir"]) / file_name, png)
        staging.commit(lambda text: click.echo(text, nl=False))
    except (OutputError, OSError) as exc:
        staging.discard()
        raise OutputFailure(f"{say(str(exc))}; no report was replaced") from exc


def _finish(result: Run, o: dict[str, Any], pair_view: bool) -> None:
    """The summary, the errors, the gate, and the exit code."""
    quiet = o["quiet"]
    item = result.items[0]
    to_stdout = any(o[w.dest] == "-" for w in WRITERS)
    if pair_view:
        if not to_stdout and not quiet:
            click.echo(format_pair(item), nl=False)
        if o["maps_dir"] is not None and not quiet:
            from .maps import map_names

            for name in map_names([item.id]):
                for suffix in ("ssim", "error"):
                    click.echo(f"wrote {printable(str(Path(o['maps_dir']) / f'{name}.{suffix}.png'))}", err=True)
        return
    if not to_stdout and not quiet:
        click.echo(format_summary(result, show_items=o["show_items"]), nl=False)
        if result.paired:
            click.echo("\n" + paired_text(result.paired), nl=False)
    for r in result.items:
        if not r.ok:
            click.echo(f"Error: {printable(r.id)}: {say(str(r.error))}", err=True)
    for c in result.checks:
        if not c.passed:
            click.echo(f"Gate failed: {say(c.message)}", err=True)
    if result.checks and all(c.passed for c in result.checks) and not quiet:
        click.echo(f"Gate passed: {plural(len(result.checks), 'condition')}", err=True)

    if result.summary.n_failed:
        sys.exit(EXIT_ITEMS_FAILED)
    if o["strict"] and (result.pred_only or result.gt_only or result.discovery_notes):
        click.echo(
            f"Error: --strict: {len(result.pred_only)} pred-only and {len(result.gt_only)} gt-only files"
            + (f", {len(result.discovery_notes)} folders not read" if result.discovery_notes else ""),
            err=True,
        )
        sys.exit(EXIT_UNMATCHED)
    if not result.passed:
        sys.exit(EXIT_GATE)


@cli.command(
    epilog="\b\nExit codes: 0 no regression; 2 a usage error or an unreadable report; 4 a regression,\nor items of OLD missing or failed in NEW."
)
@click.argument("old", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--max-drop", multiple=True, metavar="METRIC=VALUE", help="Largest allowed drop; more fails with exit 4.")
@click.option("--allow-missing", is_flag=True, help="Items of OLD missing or failed in NEW do not fail (exit 4).")
@click.option(
    "--limit", type=click.IntRange(min=0), default=20, show_default=True, help="Item drops to list, per metric."
)
def diff(old: Path, new: Path, max_drop: tuple[str, ...], allow_missing: bool, limit: int) -> None:
    """Compare two --json reports (OLD is the baseline) without recomputing."""
    drops = _usage(lambda: parse_max_drop(max_drop))
    old_doc = _usage(lambda: load_report(old))
    new_doc = _usage(lambda: load_report(new))
    _usage(lambda: check_comparable(old_doc.settings, new_doc.settings, str(old)))
    _usage(lambda: check_baseline_metrics(old_doc, drops, str(old)))
    _usage(lambda: check_baseline_metrics(new_doc, drops, str(new)))
    changes = compare_runs(old_doc, new_doc)
    items = presence(old_doc, new_doc)
    if items.shared == 0:
        click.echo(f"Warning: {printable(str(old))} and {printable(str(new))} share no scored item", err=True)
    click.echo(format_changes(changes, drops, limit, items), nl=False)
    checks = baseline_checks(changes, drops)
    if not allow_missing:
        checks.append(presence_check(items))
    failed = [c for c in checks if not c.passed]
    for c in failed:
        click.echo(f"Gate failed: {say(c.message)}", err=True)
    if failed:
        sys.exit(EXIT_GATE)


def _visuals(
    results: list[ItemResult], options: Options, n: int, quiet: bool, max_pixels: int | None
) -> list[tuple[ItemResult, Visual]]:
    from .maps import visual, worst

    out = []
    chosen = worst(results, n)
    methods = {r.keys.get("method") for r in results} - {None}
    if len(methods) > 1:  # the hardest ground truths, each with every method's prediction
        stems = list(dict.fromkeys(r.id.split("/", 1)[1] for r in chosen))
        chosen = [r for r in results if r.ok and r.id.split("/", 1)[1] in stems]
    for r in chosen:
        try:
            out.append((r, visual(r, options, max_pixels)))
        except (IqevalError, OSError, IndexError) as exc:
            _warn(f"{r.id}: no maps: {exc}", quiet)
    return out


@cli.command()
def conventions() -> None:
    """List the conventions: what each sets and which reference it is tested against."""
    click.echo(conventions_table(), nl=False)


def main() -> None:
    """Console-script entry point."""
    from . import fast

    fast.QUICK_START = True  # this process runs only iqeval's kernels (see fast.QUICK_START)
    try:
        cli(prog_name="iqeval")  # standalone mode: always ends in SystemExit
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    _exit(code)


def _exit(code: Any) -> None:
    """End the process once the command is done: what Python's own exit runs first (threads'
    exit hooks and joins, atexit handlers), then flushed output, then ``os._exit``.

    It skips only the interpreter's teardown, which frees numba's and LLVM's
    objects one by one: a fifth of a second, longer than a whole small run.
    Every file the command writes is closed before it returns.
    """
    import atexit

    shutdown = getattr(threading, "_shutdown", None)  # thread pools' exit hooks, then non-daemon joins
    if shutdown is not None:
        shutdown()

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): printed, status 1, as Python does
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: Python's own exit would say 120
            status = status or 120
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    main()
