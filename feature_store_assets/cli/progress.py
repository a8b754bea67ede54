"""What `feature-store materialize` shows while a run goes: one line per step, dbt's builds as a progress bar.

`RunProgress` reads two streams of the run, in the run's own process:
- the run's Dagster events, as the instance stores them (`DagsterInstance.add_event_listener`):
  a line per finished step with its time, materializations and checks, and warnings logged by steps;
- dbt's console lines, which dagster-dbt echoes to sys.stdout (`captured_output` puts a `LineSink` there):
  the builds' `N of M` results move the progress bar; ERROR, FAIL and WARN results get a line each.

On a terminal the bar is one line redrawn in place; otherwise (a file, a pipe) a run of several months
prints it at each tenth of the way, and a one-month run not at all. Nothing here writes colour codes.
`captured_output` also sends what the run prints (Dagster's console log, Python warnings, dbt's lines)
to the run's log file instead of the terminal, or to both with --verbose. The formatting is pure functions.
"""

from __future__ import annotations

import io
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

from feature_store_assets.core.months import describe_months, month_build_months

BAR_WIDTH = 24
LABEL_WIDTH = 34
REDRAW_SECONDS = 0.2
ESTIMATE_FROM = 0.05  # below 5% done, a time left would be a guess
# dbt's result lines: `12 of 128 OK created sql incremental model filtered.hd_orders ..... [OK in 0.15s]`
_DBT_RESULT = re.compile(r"^\s*(\d+) of (\d+) (START|OK|PASS|WARN|ERROR|FAIL|SKIP)\b\s*(.*?)[\s.]*(\[.*\])?\s*$")
SHOWN_DBT_STATUSES = ("ERROR", "FAIL", "WARN")


def format_duration(seconds: float) -> str:
    """`4.2s` under a minute, else `m:ss` or `h:mm:ss`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    done = int(fraction * width)
    return "[" + "#" * done + "." * (width - done) + "]"


def remaining_seconds(elapsed: float, fraction: float) -> float | None:
    """Time left if the rest goes at the pace so far; None before 5% is done."""
    if fraction < ESTIMATE_FROM:
        return None
    return elapsed * (1 - min(fraction, 1.0)) / fraction


def progress_line(label: str, fraction: float, elapsed: float) -> str:
    """`dbt 3/12 months [######..................]  25%  elapsed 1:02  remaining ~3:06`."""
    left = remaining_seconds(elapsed, fraction)
    return (
        f"{label} {progress_bar(fraction)} {min(fraction, 1.0):4.0%}  elapsed {format_duration(elapsed)}"
        f"  remaining {'~' + format_duration(left) if left is not None else '?'}"
    )


@dataclass(frozen=True)
class DbtResult:
    """One node's line of dbt's console output."""

    index: int
    total: int
    status: str  # START, OK, PASS, WARN, ERROR, FAIL, SKIP
    what: str  # `created sql incremental model filtered.hd_orders`, `not_null_..._client_id`


def parse_dbt_line(line: str) -> DbtResult | None:
    match = _DBT_RESULT.match(line)
    if not match:
        return None
    return DbtResult(int(match[1]), int(match[2]), match[3], match[4].strip())


def step_line(label: str, outcome: str, seconds: float | None, details: str = "") -> str:
    took = format_duration(seconds) if seconds is not None else ""
    return f"  {label:<{LABEL_WIDTH}} {outcome:<7}{took:>8}" + (f"  {details}" if details else "")


def step_details(materialized: int, checks: Mapping[str, int]) -> str:
    """`16 assets, 118 checks passed` or `16 assets, 118 checks: 117 passed, 1 failed (WARN)`."""
    parts = [f"{materialized} asset{'s' * (materialized != 1)}"] if materialized else []
    total = sum(checks.values())
    if total:
        counted = f"{total} check{'s' * (total != 1)}"
        outcomes = [f"{n} {outcome}" for outcome, n in checks.items() if n]
        parts.append(f"{counted} passed" if outcomes == [f"{total} passed"] else f"{counted}: {', '.join(outcomes)}")
    return ", ".join(parts)


def indent_message(message: str, prefix: str) -> str:
    lines = message.strip().splitlines() or [""]
    return "\n".join([prefix + lines[0], *("  " + line for line in lines[1:])])


@dataclass
class _Step:
    started: float
    materialized: set = field(default_factory=set)  # asset keys (an asset of several months has a materialization each)
    checks: dict[str, int] = field(default_factory=lambda: {"passed": 0, "failed (WARN)": 0, "failed (ERROR)": 0})


class RunProgress:
    """The progress view of one run over `months`: steps and the bar on `out`, warnings and errors the steps
    log on `err` (the operator's terminal, or the files standing for it)."""

    def __init__(
        self,
        out: IO[str],
        err: IO[str],
        months: list[date],
        step_labels: Mapping[str, str],
        show_bar: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out, self.err, self.months, self.step_labels, self.clock = out, err, months, step_labels, clock
        self.tty = show_bar and _isatty(out)
        # a file gets the bar at each tenth of a run of several months, a terminal for any run
        self.bar_lines = show_bar and not self.tty and len(months) > 1
        self._lock = threading.RLock()
        self._steps: dict[str, _Step] = {}
        self._bar_shown = ""
        self._last_draw = 0.0
        self._tenths = 0
        self._current_step: str | None = None  # the in-process executor runs one step at a time
        self._dbt_step: str | None = None
        self._dbt_started: float | None = None
        self._months_done = 0
        self._build_months: list[date] = []
        self._next_build_months: list[date] | None = None  # logged by the monthly step before its dbt build
        self._month_build = True
        self._nodes_done = self._nodes_total = 0

    # the two inputs

    def on_event(self, entry: Any) -> None:
        """A Dagster EventLogEntry of the run (an instance event listener): a display error never fails the run."""
        try:
            self._on_event(entry)
        except Exception as error:  # noqa: BLE001 - reported in the run's log (sys.stderr while it goes)
            print(f"progress view: {type(error).__name__}: {error}", file=sys.stderr)

    def _on_event(self, entry: Any) -> None:
        with self._lock:
            event = entry.dagster_event
            if event is None:
                self._on_log_message(entry.level, entry.user_message or "")
                return
            kind, step_key = event.event_type_value, event.step_key or ""
            if kind == "STEP_START":
                self._steps[step_key] = _Step(started=self.clock())
                self._current_step = step_key
            elif kind == "ASSET_MATERIALIZATION" and step_key in self._steps:
                self._steps[step_key].materialized.add(event.asset_key)
            elif kind == "ASSET_CHECK_EVALUATION" and step_key in self._steps:
                data = event.event_specific_data
                outcome = "passed" if data.passed else f"failed ({data.severity.value})"
                self._steps[step_key].checks[outcome] = self._steps[step_key].checks.get(outcome, 0) + 1
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
                self._finish_step(
                    step_key, {"STEP_SUCCESS": "ok", "STEP_FAILURE": "FAILED", "STEP_SKIPPED": "skipped"}[kind]
                )

    def on_dbt_line(self, line: str) -> None:
        """A line dbt printed (through dagster-dbt's echo)."""
        try:
            self._on_dbt_line(line)
        except Exception as error:  # noqa: BLE001 - as in on_event
            print(f"progress view: {type(error).__name__}: {error}", file=sys.stderr)

    def _on_dbt_line(self, line: str) -> None:
        with self._lock:
            if not self._month_build:
                return
            if line.startswith("Running with dbt="):  # a new dbt build (a backfill may make several)
                if self._dbt_started is None:
                    self._dbt_started, self._dbt_step = self.clock(), self._current_step
                self._nodes_done = self._nodes_total = 0
                return
            result = parse_dbt_line(line)
            if result is None:
                return
            self._nodes_total = result.total
            if result.status == "START":
                return
            self._nodes_done += 1
            if result.status in SHOWN_DBT_STATUSES:
                self._print(f"  dbt {result.status}: {result.what}")
            if self._nodes_done >= self._nodes_total:  # the build is done: its months are
                self._months_done += len(self._build_months)
                self._build_months, self._nodes_done, self._nodes_total = [], 0, 0
            self._update_bar()

    # state and drawing

    def fraction(self) -> float:
        """How far the dbt builds are, in months (a build's share moves with its nodes)."""
        if not self.months:
            return 0.0
        current = len(self._build_months) * self._nodes_done / self._nodes_total if self._nodes_total else 0.0
        if not self._build_months and self._nodes_total:  # months of the build unknown: its nodes alone
            return self._nodes_done / self._nodes_total
        return min((self._months_done + current) / len(self.months), 1.0)

    def bar(self) -> str:
        done = min(self._months_done, len(self.months))
        label = f"dbt {done}/{len(self.months)} month{'s' * (len(self.months) != 1)} built"
        if self._nodes_total:  # a build in flight: its models and tests, so the bar's share reads true
            label += f", build of {describe_months(self._build_months) or 'the run'} at {self._nodes_done}/{self._nodes_total} models and tests"
        elapsed = self.clock() - self._dbt_started if self._dbt_started is not None else 0.0
        return progress_line(label, self.fraction(), elapsed)

    def _on_log_message(self, level: int, message: str) -> None:
        months = month_build_months(message)
        if months is not None:  # a monthly step's dbt build is next
            self._next_build_months = months
        elif message.startswith("Running dbt command"):
            # a build without months (the unpartitioned models before them) is not one of the run's month builds
            self._month_build = self._next_build_months is not None
            self._build_months, self._next_build_months = self._next_build_months or [], None
        elif level >= 30 and not message.startswith(
            "Dependencies for step"
        ):  # WARNING and up; skipped steps get a line
            self._print(indent_message(message, "warning: " if level < 40 else "error: "), self.err)

    def _finish_step(self, step_key: str, outcome: str) -> None:
        step = self._steps.pop(step_key, None)
        seconds = self.clock() - step.started if step else None
        details = step_details(len(step.materialized), step.checks) if step else ""
        if step_key == self._dbt_step and outcome == "ok":
            self._months_done = len(self.months)  # held months included: the bar ends full
            self._update_bar(force=True)
        self._clear_bar()
        self._print(step_line(self.step_labels.get(step_key, step_key), outcome, seconds, details))

    def _update_bar(self, force: bool = False) -> None:
        if self.tty:
            now = self.clock()
            if force or now - self._last_draw >= REDRAW_SECONDS:
                self._last_draw = now
                self._draw(self.bar())
        elif self.bar_lines:
            tenths = int(self.fraction() * 10)
            if tenths > self._tenths:
                self._tenths = tenths
                self._print("  " + self.bar())

    def _draw(self, bar: str) -> None:
        padding = " " * max(len(self._bar_shown) - len(bar), 0)
        self.out.write("\r" + bar + padding)
        self.out.flush()
        self._bar_shown = bar

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self.out.write("\r" + " " * len(self._bar_shown) + "\r")
            self._bar_shown = ""

    def _print(self, text: str, stream: IO[str] | None = None) -> None:
        stream = stream or self.out
        shown = self._bar_shown
        self._clear_bar()
        self.out.flush()
        stream.write(text + "\n")
        stream.flush()
        if shown:
            self._draw(shown)

    def close(self) -> None:
        with self._lock:
            self._clear_bar()
            self.out.flush()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class LineSink(io.TextIOBase):
    """A text stream that hands on whole lines: to `on_line`, to `file` and, when given, to `echo`.

    It has no file descriptor, so Dagster's compute-log capture leaves it alone.
    """

    def __init__(
        self, file: IO[str], on_line: Callable[[str], None] | None = None, echo: IO[str] | None = None
    ) -> None:
        super().__init__()
        self.file, self.on_line, self.echo = file, on_line, echo
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self.file.write(text)
            if self.echo is not None:
                self.echo.write(text)
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
        if self.on_line is not None:
            for line in lines:
                self.on_line(line)
        return len(text)

    def flush(self) -> None:
        self.file.flush()
        if self.echo is not None:
            self.echo.flush()


@contextmanager
def captured_output(
    log_file: Path, on_stdout_line: Callable[[str], None], echo_stdout: bool = False, echo_stderr: bool = False
) -> Iterator[None]:
    """While the run goes, sys.stdout (dbt's lines as dagster-dbt echoes them) and sys.stderr (Dagster's console
    log, Python warnings) go to `log_file`, and each to the terminal too when asked; stdout's lines go to
    `on_stdout_line`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    stdout, stderr = sys.stdout, sys.stderr
    with open(log_file, "a", encoding="utf-8") as file:
        sys.stdout = LineSink(file, on_stdout_line, stdout if echo_stdout else None)
        sys.stderr = LineSink(file, None, stderr if echo_stderr else None)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            sys.stdout, sys.stderr = stdout, stderr


def run_header(run_id: str, months: list[date]) -> str:
    return f"run {run_id}: {describe_months(months)} ({len(months)} month{'s' * (len(months) != 1)})"
