"""The ``pinnbench`` command line: list, run, compare (and the report/plot/bench commands that build on runs)."""
from __future__ import annotations

import argparse
import ast
import re
import signal
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

from tabulate import tabulate

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


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pinnbench", description="Benchmark optimizers for physics-informed neural networks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    plugin_help = "a .py file registering extra optimizers/problems (repeatable)"
    listing = sub.add_parser("list", help="list problems, optimizers and protocols, and where each came from")
    listing.add_argument("--plugin", action="append", default=[], help=plugin_help)

    run = sub.add_parser("run", help="run a grid of problem x optimizer x seed under a protocol")
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

    compare = sub.add_parser("compare", help="where a new optimizer stands: run a plugin's optimizers and the "
                                             "baselines on the suite, reusing stored baseline runs")
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

    from .perf import probe
    bench = sub.add_parser("bench", help="performance probe of the Jacobian/SVD core on this machine")
    probe.add_arguments(bench)

    plot = sub.add_parser("plot", help="figures of one run")
    plot_kinds = plot.add_subparsers(dest="figure", required=True, parser_class=_Parser)
    spectrum = plot_kinds.add_parser("spectrum", help="singular values, RCE, precision, sqrt(loss) and cutoff "
                                     "rank at chosen steps, and the loss curve with phase changes")
    spectrum.add_argument("run", help="a run file (.npz) of an SVD-based optimizer")
    spectrum.add_argument("--steps", nargs="+", type=int, help="steps to draw (default: around phase changes)")
    spectrum.add_argument("--out", help="output path without extension (default: next to the run file)")

    report = sub.add_parser("report", help="tables, figures, time-to-target and profiles of a results folder")
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
    group = parser.add_argument_group("execution (default: one run after another in one isolated worker process: "
                                      "a hang is stopped at budget + grace, a crash costs its run only)")
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
    backend = make_backend(args.jobs, args.scheduler, args.scheduler_file, grace, args.retries, args.in_process)
    warning = backend.warning(protocol)
    if warning:
        print(f"pinnbench: warning: {warning}", file=sys.stderr)
    return backend


def _cmd_list(args: argparse.Namespace) -> int:
    for kind in ("problem", "optimizer"):
        rows = []
        for name, entry in entries(kind).items():
            doc = (entry.cls.__doc__ or "").strip().splitlines()
            if kind == "problem":
                layers = tuple(entry.cls.layers)
                details = f"net {net_text(layers)} (P = {MLP(layers).n_params})"
                extra = entry.cls.description
            else:
                details = ", ".join(f"{k}={v!r}" for k, v in entry.cls.hyperparameters().items())
                extra = doc[0] if doc else ""
            rows.append([name, entry.source, extra, details])
        print(tabulate(rows, headers=[kind, "source", "description",
                                      "default net" if kind == "problem" else "hyperparameters (defaults)"],
                       maxcolwidths=[None, None, 60, 70]))
        print()
    rows = [[p.name, len(p.seeds), f"{p.budget:g} s", p.points, p.device, p.description] for p in PRESETS.values()]
    print(tabulate(rows, headers=["protocol", "seeds", "budget/run", "points", "device", "description"],
                   maxcolwidths=[None, None, None, None, None, 90]))
    return 0


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
        args = _parser().parse_args(argv)
        for plugin in getattr(args, "plugin", []):
            load_plugin(Path(plugin))
        commands = {"list": _cmd_list, "run": _cmd_run, "report": _cmd_report, "bench": _cmd_bench, "plot": _cmd_plot,
                    "compare": _cmd_compare}
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
