"""`cds report`: how much the service says, over a library of charts (a benchmark of words).

A service that talks on every chart is switched off. This prints, per chart and in all, the
cards it would get, the characters of Markdown per card and per chart, and how many charts got
no cards at all, against the budget the cards are written to (cds.cards).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from cds.cards import DETAIL_LIMIT, EXTENSION_KEY, MAX_OTHER_CARDS, TOTAL_LIMIT
from cds.replay import Replayer, ReplayOptions, collect_inputs


@dataclass(frozen=True)
class ChartWords:
    name: str
    cards: int
    red_flags: int
    longest: int  # characters of the longest detail
    total: int  # characters of all details

    @property
    def within_budget(self) -> bool:
        return (self.longest <= DETAIL_LIMIT and self.total <= TOTAL_LIMIT
                and self.cards - self.red_flags <= MAX_OTHER_CARDS)


def measure(paths: list[str], options: ReplayOptions) -> tuple[list[ChartWords], list[str]]:
    """Words per chart for every readable input, and the inputs that could not be replayed."""
    replayer = Replayer(options)
    charts, failed = [], []
    for name, source in collect_inputs(paths):
        outcome = replayer.one(name, source)
        if not outcome.ok:
            failed.append(f"{name}: {outcome.error}")
            continue
        cards: list[dict[str, Any]] = (outcome.response or {}).get("cards", [])
        sizes = [len(c.get("detail") or "") for c in cards]
        red = sum(1 for c in cards if c.get("extension", {}).get(EXTENSION_KEY, {}).get(
            "redFlag"))
        charts.append(ChartWords(Path(name).name, len(cards), red, max(sizes, default=0),
                                 sum(sizes)))
    return charts, failed


def report(paths: list[str], options: ReplayOptions, console: Console) -> int:
    charts, failed = measure(paths, options)
    table = Table(title="Cards per chart", box=box.SIMPLE_HEAD, collapse_padding=True)
    table.add_column("chart", no_wrap=True, overflow="ellipsis", max_width=34)
    for col in ("cards", "red flag", "longest", "total", "budget"):
        table.add_column(col, justify="right", no_wrap=True)
    for c in charts:
        table.add_row(c.name, str(c.cards), str(c.red_flags), str(c.longest), str(c.total),
                      "ok" if c.within_budget else "[red]over[/red]")
    console.print(table)
    speaking = [c for c in charts if c.cards]
    sizes = [c.total for c in speaking]
    console.print(
        f"{len(charts)} charts: {len(charts) - len(speaking)} got no cards; "
        f"cards per chart mean {statistics.fmean([c.cards for c in charts] or [0]):.1f}, "
        f"max {max((c.cards for c in charts), default=0)}; "
        f"characters per card max {max((c.longest for c in charts), default=0)} "
        f"(budget {DETAIL_LIMIT}); per chart median {statistics.median(sizes or [0]):.0f}, "
        f"max {max(sizes, default=0)} (budget {TOTAL_LIMIT}); "
        f"over budget: {sum(not c.within_budget for c in charts)}")
    for line in failed:
        console.print(f"[red]not replayed: {line}[/red]", soft_wrap=True)
    return 0 if not failed and all(c.within_budget for c in charts) else 1
