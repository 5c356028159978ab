"""The ``pinnbench`` command line: list, run, compare, check (and the report/plot/bench commands that build on runs)."""
from __future__ import annotations

import argparse
import ast
import re
import signal
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from tabulate import tabulate

from ._version import __version__
from .execution.backends import Backend, make_backend
from .compare import compare_plugin
from .errors import PinnbenchError
from .core.model import MLP
from .execution.progress import Progress
from .execution.run import net_text
from .execution.suite import SuiteResult, grid, run_suite
from .protocol import PRESETS, Protocol, load_protocol, parse_duration
from .registry import entries, load_plugin
from .store import UnreadableRunWarning, load_runs


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise PinnbenchError(f"{self.prog}: {message}")


def parse_value(text: str) -> Any:
    """A hyperparameter value from the CLI: a Python literal (1e-7, 20, None, (1, 2)) or a plain string."""
    lowered = {"none": None, "true": True, "false": False}
    if text.lower() in lowered:
        return lowered[text.lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_optimizer(text: str) -> tuple[str, dict[str, Any]]:
    """``name`` or ``name:key=value,key=value`` -> (name, hyperparameters)."""
    name, _, rest = text.partition(":")
    hparams: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PinnbenchError(f"invalid optimizer setting {text!r}: expected NAME or NAME:key=value[,key=value]")
        if key.strip() in hparams:
            raise PinnbenchError(f"invalid optimizer setting {text!r}: {key.strip()!r} is set twice")
        hparams[key.strip()] = parse_value(value.strip())
    return name.strip(), hparams


def parse_problem(text: str) -> tuple[str, tuple[int, ...] | None]:
    """``name`` or ``name:net=2,64,64,1`` (widths separated by ',', 'x' or '-') -> (name, net or None)."""
    name, sep, rest = text.partition(":")
    if not sep:
        return name.strip(), None
    key, eq, value = rest.partition("=")
    widths = [w for w in re.split(r"[,x-]", value.strip()) if w]
    if key.strip() != "net" or not eq or not widths or not all(w.isdigit() for w in widths):
        raise PinnbenchError(f"invalid problem setting {text!r}: expected NAME or NAME:net=W0,W1,...,WL "
                             "(positive integer widths, e.g. laplace2d:net=2,64,64,1)")
    return name.strip(), tuple(int(w) for w in widths)


def _examples(lines: Sequence[str]) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _command(sub: Any, name: str, summary: str, description: str, examples: Sequence[str]) -> argparse.ArgumentParser:
    """A subcommand whose --help shows ``description`` and an "examples:" epilog."""
    return sub.add_parser(name, help=summary, description=textwrap.fill(description, 100),
                          epilog=_examples(examples), formatter_class=argparse.RawDescriptionHelpFormatter)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pinnbench", formatter_class=argparse.RawDescriptionHelpFormatter,
                     description=textwrap.fill(
                         "Benchmark optimizers for physics-informed neural networks: every optimizer on the same "
                         "problems, seeds, budget and device, with one run file per run and reports built from "
                         "them. 'pinnbench COMMAND --help' describes a command.", 100),
                     epilog=_examples(["pinnbench list", "pinnbench run -p laplace2d heat -o anagram adam --budget 30s",
                                       "pinnbench report results", "pinnbench check my_problem.py"]))
    parser.add_argument("--version", action="version", version=f"pinnbench {__version__}")
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND", parser_class=_Parser)

    plugin_help = "a .py file registering extra optimizers/problems (repeatable)"
    listing = _command(sub, "list", "list problems, optimizers and protocols, and where each came from",
                       "List every registered problem (its default net and the points of each residual group "
                       "under the quick and paper point sets), every optimizer (its hyperparameters and their "
                       "defaults) and the protocol presets.",
                       ["pinnbench list", "pinnbench list --plugin my_optimizer.py"])
    listing.add_argument("--plugin", action="append", default=[], help=plugin_help)

    run = _command(sub, "run", "run a grid of problem x optimizer x seed under a protocol",
                   "Run every problem x optimizer x seed of the grid under a protocol (quick by default), one "
                   "run file per run in the results folder, skipping the runs already there; then print a "
                   "summary table and write the report.",
                   ["pinnbench run --all", "pinnbench run -p laplace2d heat -o anagram adam --seeds 1 2 3 --budget 30s",
                    "pinnbench run -p laplace2d:net=2,64,64,1 -o anagram:cutoff=1e-7 --steps 200",
                    "pinnbench run --all --protocol paper --jobs 4 --out results-paper"])
    run.add_argument("--all", action="store_true", help="every problem and optimizer of the protocol")
    run.add_argument("-p", "--problems", nargs="+", metavar="NAME[:net=W,...]",
                     help="problems to run, optionally with a net: -p laplace2d:net=2,64,64,1 heat")
    run.add_argument("-o", "--optimizers", nargs="+", metavar="NAME[:k=v,...]",
                     help="optimizers to run, with hyperparameters: -o anagram:cutoff=1e-7 adam")
    _add_protocol_options(run)
    run.add_argument("--out", default="results", help="results folder (default: results/)")
    run.add_argument("--plugin", action="append", default=[], help=plugin_help)
    run.add_argument("--no-resume", action="store_true", help="re-run runs already in the results folder")
    run.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    _add_execution_options(run)

    compare = _command(sub, "compare", "where a new optimizer stands: run a plugin's optimizers and the "
                                       "baselines on the suite, reusing stored baseline runs",
                       "Run the optimizers a plugin file registers and the baselines on the protocol's problems "
                       "and seeds, reusing the baseline runs already stored in the results folder, and report "
                       "where the new optimizers stand.",
                       ["pinnbench compare my_optimizer.py",
                        "pinnbench compare my_optimizer.py --against anagram adam -p laplace2d heat --budget 60s"])
    compare.add_argument("plugin_file", metavar="PLUGIN.py", help="a .py file registering the new optimizer(s)")
    compare.add_argument("--against", nargs="+", metavar="NAME[:k=v,...]",
                         help="baseline optimizers (default: every registered optimizer not in PLUGIN.py)")
    compare.add_argument("-p", "--problems", nargs="+", metavar="NAME", help="problems (default: the protocol's)")
    _add_protocol_options(compare)
    compare.add_argument("--out", default="results", help="results folder holding the baselines (default: results/)")
    compare.add_argument("--report", help="report folder (default: <out>/compare-<optimizer>/)")
    compare.add_argument("--no-report", action="store_true", help="print the summary table only")
    compare.add_argument("--plugin", action="append", default=[], help=plugin_help)
    _add_execution_options(compare)

    check = _command(sub, "check", "check that a plugin's problems and optimizers keep the harness's contract",
                     "For each problem a file registers: unique residual group names, sizes that agree, an exact "
                     "solution that makes every residual vanish on the quick points, and a residual Jacobian "
                     "that agrees with finite differences. For each optimizer: steps on laplace2d that keep θ "
                     "finite, its shape and dtype, and info/spectrum keys declared in info_keys/spectrum_keys. "
                     "One line per check; exit 0 when all pass, 1 when one fails, 2 for bad input.",
                     ["pinnbench check my_problem.py", "pinnbench check problems/heat.py optimizers/anagram.py",
                      "pinnbench check --builtin"])
    check.add_argument("files", nargs="*", metavar="FILE.py", help="plugin files registering problems/optimizers")
    check.add_argument("--builtin", action="store_true", help="also check every built-in problem and optimizer")

    from .perf import probe
    bench = _command(sub, "bench", "performance probe of the Jacobian/SVD core on this machine",
                     "Measure this machine's float64 matmul peak and copy bandwidth, then the residual Jacobian, "
                     "the thin SVD, the line search and a full step of the SVD-based optimizers at every "
                     "problem's paper size, each as a fraction of what the ceilings allow.",
                     ["pinnbench bench", "pinnbench bench --threads 1 --clock cpu --no-scaling",
                      "pinnbench bench -p laplace2d --optimizers anagram --json probe.json"])
    probe.add_arguments(bench)

    plot = _command(sub, "plot", "figures of one run",
                    "Draw a figure of one run file: spectrum, the spectral panels of an SVD-based run.",
                    ["pinnbench plot spectrum results/RUN.npz",
                     "pinnbench plot spectrum results/RUN.npz --steps 1 50 200"])
    plot_kinds = plot.add_subparsers(dest="figure", required=True, title="figures", metavar="FIGURE",
                                     parser_class=_Parser)
    spectrum = _command(plot_kinds, "spectrum", "singular values, RCE, precision, sqrt(loss) and cutoff rank at "
                        "chosen steps, and the loss curve with phase changes",
                        "Draw the spectral panels of an SVD-based run (anagram, amstramgram): at chosen steps the "
                        "singular values, the reconstruction error RCE, the precision, sqrt(train loss) and the "
                        "cutoff rank on one log axis, and the loss curve with the phase changes. Writes PNG and "
                        "SVG.",
                        ["pinnbench plot spectrum results/RUN.npz",
                         "pinnbench plot spectrum results/RUN.npz --steps 1 50 200 --out figures/spectrum"])
    spectrum.add_argument("run", help="a run file (.npz) of an SVD-based optimizer")
    spectrum.add_argument("--steps", nargs="+", type=int, help="steps to draw (default: around phase changes)")
    spectrum.add_argument("--out", help="output path without extension (default: next to the run file)")

    report = _command(sub, "report", "tables, figures, time-to-target and profiles of a results folder",
                      "Build the report of a results folder: error and time tables, convergence figures, "
                      "time-to-target and performance profiles.",
                      ["pinnbench report", "pinnbench report results --format md latex --metric l2_rel",
                       "pinnbench report results --no-figures --out report-tables"])
    report.add_argument("results", nargs="?", default="results", help="results folder (default: results/)")
    report.add_argument("--format", nargs="+", choices=("md", "latex", "html"), default=["md", "html"],
                        help="table formats (default: md html)")
    report.add_argument("--out", help="report folder (default: RESULTS/report)")
    report.add_argument("--metric", choices=("l2_abs", "l2_rel"), default="l2_abs",
                        help="error metric of tables and figures (default: l2_abs, the papers' absolute RMS)")
    report.add_argument("--no-figures", action="store_true", help="tables only (faster)")
    return parser


def _add_protocol_options(parser: argparse.ArgumentParser) -> None:
    """The protocol and the settings a command line may override in it (run, compare)."""
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="seeds (default: the protocol's)")
    parser.add_argument("--budget", help="optimizer time per run, e.g. 30s, 5m (overrides the protocol)")
    parser.add_argument("--steps", type=int, help="step cap per run (overrides the protocol)")
    parser.add_argument("--protocol", default="quick", help="quick (default), paper, or a .toml/.json protocol file")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or auto (overrides the protocol)")


def _add_execution_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("execution (default: isolated worker processes, cores // threads of them when "
                                      "the protocol pins its threads per run as quick does, else one running one run "
                                      "after another: a hang is stopped at budget + grace, a crash costs its run "
                                      "only)")
    group.add_argument("--in-process", action="store_true",
                       help="run in this process instead (no protection against plugins that hang or crash)")
    group.add_argument("--jobs", type=int, metavar="N",
                       help="N isolated worker processes, each with cores/N threads (hangs and crashes cost one run)")
    group.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on a Dask cluster (pinnbench[dask])")
    group.add_argument("--scheduler-file", metavar="FILE", help="run on the Dask cluster this scheduler file names")
    group.add_argument("--grace", help="isolated runs are stopped at budget + grace (default max(10 s, 10%% of it))")
    group.add_argument("--retries", type=int, metavar="N",
                       help="isolated runs whose process died are tried again N times (default 1)")


def _backend(args: argparse.Namespace, protocol: Protocol) -> Backend:
    """The backend the execution options name; warns on stderr when its runs would share cores."""
    grace = parse_duration(args.grace, "--grace") if args.grace is not None else None
    backend = make_backend(args.jobs, args.scheduler, args.scheduler_file, grace, args.retries, args.in_process,
                           protocol)
    warning = backend.warning(protocol)
    if warning:
        print(f"pinnbench: warning: {warning}", file=sys.stderr)
    return backend


def _point_counts(problem: type) -> str:
    """``quick: interior 784, boundary 116; paper: the same``: the points of each residual group per point set."""
    counts = {}
    for preset in ("quick", "paper"):
        try:
            sets = problem().point_sets(preset, torch.Generator().manual_seed(0))
            counts[preset] = ", ".join(f"{g.name} {g.points.shape[0]}" for g in sets.groups)
        except Exception as exc:  # noqa: BLE001 - a plugin's broken point sets must not hide the listing
            counts[preset] = f"point_sets raised {type(exc).__name__}"
    paper = "the same" if counts["paper"] == counts["quick"] else counts["paper"]
    return f"quick: {counts['quick']}; paper: {paper}"


def _cmd_list(args: argparse.Namespace) -> int:
    for kind in ("problem", "optimizer"):
        rows = []
        for name, entry in entries(kind).items():
            doc = (entry.cls.__doc__ or "").strip().splitlines()
            if kind == "problem":
                layers = tuple(entry.cls.layers)
                pinned = [f"{p.name}: {net_text(n)} (P = {MLP(n).n_params})" for p in PRESETS.values()
                          if (n := p.net_for(name)) is not None and tuple(n) != layers]
                details = ["; ".join([f"net {net_text(layers)} (P = {MLP(layers).n_params})", *pinned]),
                           _point_counts(entry.cls)]
                extra = entry.cls.description
            else:
                details = [", ".join(f"{k}={v!r}" for k, v in entry.cls.hyperparameters().items())]
                extra = doc[0] if doc else ""
            rows.append([name, entry.source, extra, *details])
        headers = ["net (default; where a protocol pins another)", "collocation points per group"] if kind == "problem" else \
            ["hyperparameters (defaults)"]
        print(tabulate(rows, headers=[kind, "source", "description", *headers],
                       maxcolwidths=[None, None, 44, 40, 50] if kind == "problem" else [None, None, 60, 70]))
        print()
    rows = [[p.name, len(p.seeds), _budget_text(p), p.points, p.device, p.description] for p in PRESETS.values()]
    print(tabulate(rows, headers=["protocol", "seeds", "budget/run", "points", "device", "description"],
                   maxcolwidths=[None, None, None, None, None, 90]))
    return 0


def _budget_text(protocol: Protocol) -> str:
    """A protocol's budget per run: one value, or the range over its per-problem budgets."""
    budgets = [protocol.budget] if not protocol.problem_budgets else [b for _, b in protocol.problem_budgets]
    low, high = min(budgets), max(budgets)
    return f"{low:g} s" if low == high else f"{low:g}-{high:g} s by problem"


def _protocol(args: argparse.Namespace) -> Protocol:
    """The protocol named by --protocol, with --budget, --steps, --device and --seeds applied."""
    protocol = load_protocol(args.protocol)
    changes: dict[str, Any] = {}
    if args.budget is not None:
        changes.update(budget=parse_duration(args.budget), suite_budget=None, problem_budgets=())
    if args.steps is not None:
        if args.steps < 1:
            raise PinnbenchError(f"invalid --steps {args.steps}: expected a positive integer")
        changes.update(steps=args.steps, problem_steps=())
    if args.device is not None:
        changes["device"] = args.device
    if args.seeds:
        changes["seeds"] = tuple(args.seeds)
    return protocol.replace(**changes) if changes else protocol


def _cmd_run(args: argparse.Namespace) -> int:
    protocol = _protocol(args)
    if not (args.all or args.problems or args.optimizers):
        raise PinnbenchError("choose what to run: --all, or -p PROBLEM... and/or -o OPTIMIZER...")
    problems = [parse_problem(p) for p in args.problems or protocol.problems or entries("problem")]
    optimizers = [parse_optimizer(o) for o in (args.optimizers or protocol.optimizers or entries("optimizer"))]
    specs = grid(problems, optimizers, protocol.seeds, protocol)
    with _backend(args, protocol) as backend:
        def announce(effective: Protocol, runs: list) -> None:
            print(f"pinnbench: {len(specs)} runs ({len(problems)} problems x {len(optimizers)} optimizers x "
                  f"{len(protocol.seeds)} seeds), protocol {effective.name} [{effective.protocol_id}], "
                  f"{backend.describe()}, results in {args.out}", file=sys.stderr)

        result = run_suite(specs, protocol, args.out, resume=not args.no_resume, progress=Progress(),
                           backend=backend, announce=announce)
    _print_summary(args.out, result.run_ids)
    _print_counts(result)
    if not args.no_report:
        from .report import write_report  # matplotlib/seaborn load only when a report is written
        path = write_report(args.out, formats=("md", "html"))
        print(f"pinnbench: report written to {path / 'index.html'}", file=sys.stderr)
    return exit_status(result, args.out)


def exit_status(result: SuiteResult, out: str | Path) -> int:
    """0 when every run executed now ended ok, diverged or timeout (results, not harness failures); else 1,
    with a last line saying how many ended in error and where to look."""
    errors = result.errors()
    if not errors:
        return 0
    path, record = errors[0]
    m = record.manifest
    print(f"pinnbench: {len(errors)} of {len(result.records)} runs ended in error (first: {m['problem']} "
          f"{m['optimizer']} seed {m['seed']}: {m.get('error')}); messages and tracebacks are in their run files "
          f"in {out} (e.g. {path.name}; pinnbench.load_runs({str(out)!r}) has an error column)", file=sys.stderr)
    return 1


def _print_counts(result: SuiteResult) -> None:
    counts = ", ".join(f"{n} {status}" for status, n in result.status_counts().items() if n)
    print(f"pinnbench: ran {len(result.written)} runs ({counts or 'none'}), {len(result.skipped)} already done",
          file=sys.stderr)


def _cmd_compare(args: argparse.Namespace) -> int:
    protocol = _protocol(args)
    against = [parse_optimizer(o) for o in args.against] if args.against else None
    with _backend(args, protocol) as backend:
        comparison = compare_plugin(args.plugin_file, protocol, out=args.out, against=against,
                                    problems=args.problems, backend=backend, report=not args.no_report,
                                    report_dir=args.report)
    return exit_status(comparison.suite, args.out)


def _cmd_bench(args: argparse.Namespace) -> int:
    from .perf import probe
    probe.run(args)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from .check import check_files
    if not (args.files or args.builtin):
        raise PinnbenchError("choose what to check: FILE.py ... (a plugin file, or problems/NAME.py, "
                             "optimizers/NAME.py) and/or --builtin")
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    for outcome in check_files(args.files, builtin=args.builtin):
        print(outcome, flush=True)
        counts[outcome.status] += 1
    print(f"pinnbench: {sum(counts.values())} checks: {counts['PASS']} passed, {counts['FAIL']} failed, "
          f"{counts['SKIP']} skipped", file=sys.stderr)
    return 1 if counts["FAIL"] else 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from .plot_spectrum import plot_spectrum
    run = Path(args.run)
    if not run.is_file():
        raise PinnbenchError(f"run file {args.run!r} not found: expected a .npz file of a results folder")
    paths = plot_spectrum(run, args.steps, args.out or run.with_suffix("").as_posix() + "-spectrum")
    print(f"pinnbench: wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report
    if not Path(args.results).is_dir():
        raise PinnbenchError(f"results folder {args.results!r} not found")
    path = write_report(args.results, args.out, tuple(args.format), error=args.metric,
                        figures=not args.no_figures)
    print(f"pinnbench: report written to {path / 'index.html'}", file=sys.stderr)
    return 0


def _print_summary(out: str, run_ids: set[str]) -> None:
    """The final values of the suite's runs, by the one statistic of :mod:`pinnbench.statistics`."""
    from .statistics import SUMMARY_TITLE, final_values_table

    runs = load_runs(out)
    runs = runs[runs.run_id.isin(run_ids)]
    if runs.empty:
        return
    print(SUMMARY_TITLE)
    print(tabulate(final_values_table(runs), headers="keys", showindex=False, disable_numparse=True))


class Terminated(KeyboardInterrupt):
    """SIGTERM: stop like Ctrl-C (workers stopped, claims released, finished runs kept)."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated()


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, UnreadableRunWarning):
        print(f"pinnbench: warning: {message}", file=sys.stderr)
    else:
        _show_warning(message, category, filename, lineno, file, line)


_show_warning = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; bad input prints one line and returns 2; a suite with runs that ended
    in error returns 1 (see :func:`exit_status`)."""
    previous_term = signal.getsignal(signal.SIGTERM)
    warnings.showwarning = _one_line_warning
    try:
        try:
            signal.signal(signal.SIGTERM, _terminate)
        except ValueError:  # not the main thread
            pass
        parser = _parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version have printed what they show
            return int(exc.code or 0)
        if args.command is None:
            parser.print_help()
            return 0
        for plugin in getattr(args, "plugin", []):
            load_plugin(Path(plugin))
        commands = {"list": _cmd_list, "run": _cmd_run, "report": _cmd_report, "bench": _cmd_bench, "plot": _cmd_plot,
                    "compare": _cmd_compare, "check": _cmd_check}
        return commands[args.command](args)
    except PinnbenchError as exc:
        print(f"pinnbench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file or folder the command needs: one line, not a traceback
        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        print(f"pinnbench: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("pinnbench: interrupted; finished runs are saved, run again to resume", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        warnings.showwarning = _show_warning
        try:
            signal.signal(signal.SIGTERM, previous_term)
        except (ValueError, TypeError):
            pass
