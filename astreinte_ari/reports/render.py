"""A KPI report as CSV, JSON or one self-contained HTML file (charts inlined as PNG).

The HTML has no external reference at all (no scripts, fonts or images to
fetch): it opens offline and can be mailed or archived as it is.
"""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

from astreinte_ari.reports.csv_safe import SafeWriter
from astreinte_ari.reports.kpis import WEEKDAYS, Report


def to_json(report: Report) -> str:
    return json.dumps(report.to_json_dict(), indent=2, ensure_ascii=False)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _sec(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def to_csv(report: Report) -> str:
    """Long format: section,key,subkey,value (one KPI per row; easy to pivot)."""
    out = io.StringIO()
    writer = SafeWriter(out)  # formula-injection guard: csv_safe.py
    writer.writerow(["section", "key", "subkey", "value"])
    data = report.to_json_dict()
    for key in ("from", "to", "timezone", "line", "calls", "answered", "abandoned", "voicemail",
                "answer_rate", "abandon_rate", "voicemail_rate"):  # fmt: skip
        writer.writerow(["summary", key, "", data[key]])
    for key, value in data["time_to_answer_s"].items():
        writer.writerow(["time_to_answer_s", key, "", value])
    for key, value in data["talk_time_s"].items():
        writer.writerow(["talk_time_s", key, "", value])
    for key, value in data["outcomes"].items():
        writer.writerow(["outcome", key, "", value])
    for key, value in data["per_day"].items():
        writer.writerow(["per_day", key, "", value])
    for day, row in data["hour_of_week"].items():
        for hour, value in enumerate(row):
            if value:
                writer.writerow(["hour_of_week", day, f"{hour:02d}", value])
    for hop, outcomes in data["per_hop"].items():
        for outcome, value in outcomes.items():
            writer.writerow(["per_hop", hop, outcome, value])
    for person, stats in data["per_person"].items():
        for key, value in stats.items():
            writer.writerow(["per_person", person, key, value])
    return out.getvalue()


# -- HTML ---------------------------------------------------------------------------


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _charts(report: Report) -> list[tuple[str, str]]:
    from astreinte_ari.extras import require

    matplotlib = require("matplotlib", "charts", "the HTML report's charts")
    matplotlib.use("Agg")  # no display: render to memory only
    from matplotlib.figure import Figure

    charts: list[tuple[str, str]] = []
    fig = Figure(figsize=(8, 3))
    ax = fig.subplots()
    days = list(report.per_day)
    ax.bar(range(len(days)), [report.per_day[d] for d in days], color="#3b6ea5")
    step = max(1, len(days) // 12)
    ax.set_xticks(range(0, len(days), step), [d[5:] for d in days[::step]], rotation=45)
    ax.set_ylabel("calls")
    ax.set_title("Calls per day")
    charts.append(("Calls per day", _png(fig)))

    fig = Figure(figsize=(8, 2.8))
    ax = fig.subplots()
    image = ax.imshow(report.hour_of_week, aspect="auto", cmap="Blues")
    ax.set_yticks(range(7), list(WEEKDAYS))
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}h" for h in range(0, 24, 2)])
    ax.set_title("Calls per hour of the week (local time)")
    fig.colorbar(image, ax=ax)
    charts.append(("Calls per hour of the week", _png(fig)))

    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    outcomes = sorted(report.by_outcome.items(), key=lambda item: -item[1])
    ax.barh([o for o, _ in outcomes], [n for _, n in outcomes], color="#6a9f58")
    ax.invert_yaxis()
    ax.set_title("Call outcomes")
    charts.append(("Call outcomes", _png(fig)))

    if report.per_hop:
        fig = Figure(figsize=(8, 3))
        ax = fig.subplots()
        hops = sorted(report.per_hop)
        names = sorted({o for counts in report.per_hop.values() for o in counts})
        bottom = [0] * len(hops)
        for name in names:
            values = [report.per_hop[h].get(name, 0) for h in hops]
            ax.bar([f"hop {h}" for h in hops], values, bottom=bottom, label=name)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.legend(fontsize=7, loc="upper right")
        ax.set_title("Outcome per hop of the cascade")
        charts.append(("Outcome per hop", _png(fig)))
    return charts


_STYLE = """
body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#eef}
td:first-child,th:first-child{text-align:left}img{display:block;margin:1em 0;max-width:100%}
"""


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def to_html(report: Report) -> str:
    title = f"On-call line report {report.since:%Y-%m-%d} to {report.until:%Y-%m-%d}"
    if report.line:
        title += f", line {report.line}"
    summary = _table(
        ["indicator", "value"],
        [
            ["calls", report.total],
            ["answered (accepted by a person)", f"{report.answered} ({_pct(report.answer_rate)})"],
            ["abandoned", f"{report.abandoned} ({_pct(report.abandon_rate)})"],
            ["voicemail", f"{report.voicemail} ({_pct(report.voicemail_rate)})"],
            ["time to answer, median", _sec(report.tta_median)],
            ["time to answer, 90th percentile", _sec(report.tta_p90)],
            ["talk time, total", _sec(report.talk_total)],
            ["talk time, mean / median", f"{_sec(report.talk_mean)} / {_sec(report.talk_median)}"],
        ],
    )
    people = _table(
        ["person", "rung", "accepted", "declined", "missed", "other"],
        [[p, s.rung, s.accepted, s.declined, s.missed, s.other]
         for p, s in sorted(report.per_person.items())],
    )  # fmt: skip
    images = "".join(
        f'<h2>{html.escape(name)}</h2><img alt="{html.escape(name)}" '
        f'src="data:image/png;base64,{data}">'
        for name, data in _charts(report)
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>Times in {html.escape(report.timezone)}; "
        f"period from {report.since.isoformat()} (inclusive) to {report.until.isoformat()} "
        f"(exclusive).</p>{summary}<h2>Per person</h2>{people}{images}</body></html>"
    )
