"""A KPI report as CSV, JSON or one self-contained HTML file (charts inlined as PNG).

JSON and CSV are for machines: stable keys, person ids, raw seconds. The HTML is
for people, in French or English (reports/humanize.py, reports/labels.py):
names, "3 h 08 min", labelled columns. It has no external reference at all (no
scripts, fonts or images to fetch): it opens offline and can be mailed or
archived as it is.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from astreinte_ari.reports import humanize as hz
from astreinte_ari.reports.csv_safe import SafeWriter
from astreinte_ari.reports.kpis import Report
from astreinte_ari.reports.labels import label


def to_json(report: Report) -> str:
    return json.dumps(report.to_json_dict(), indent=2, ensure_ascii=False)


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


def _charts(report: Report, lang: hz.Lang) -> list[tuple[str, str]]:
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
    # fr: day/month; en: month-day (as ISO, unambiguous).
    ticks = [f"{d[8:]}/{d[5:7]}" if lang == "fr" else d[5:] for d in days[::step]]
    ax.set_xticks(range(0, len(days), step), ticks, rotation=45)
    ax.set_ylabel(label("calls", lang))
    title = label("calls_per_day", lang)
    ax.set_title(title)
    charts.append((title, _png(fig)))

    fig = Figure(figsize=(8, 2.8))
    ax = fig.subplots()
    image = ax.imshow(report.hour_of_week, aspect="auto", cmap="Blues")
    ax.set_yticks(range(7), list(hz.weekday_names(lang)))
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}h" for h in range(0, 24, 2)])
    title = label("calls_per_hour", lang)
    ax.set_title(title)
    fig.colorbar(image, ax=ax)
    charts.append((title, _png(fig)))

    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    outcomes = sorted(report.by_outcome.items(), key=lambda item: -item[1])
    ax.barh([label(o, lang) for o, _ in outcomes], [n for _, n in outcomes], color="#6a9f58")
    ax.invert_yaxis()
    title = label("call_outcomes", lang)
    ax.set_title(title)
    charts.append((title, _png(fig)))

    if report.per_hop:
        fig = Figure(figsize=(8, 3))
        ax = fig.subplots()
        hops = sorted(report.per_hop)
        names = sorted({o for counts in report.per_hop.values() for o in counts})
        bottom = [0] * len(hops)
        for name in names:
            values = [report.per_hop[h].get(name, 0) for h in hops]
            ax.bar([label("hop_n", lang, n=str(h)) for h in hops], values, bottom=bottom,
                   label=label(name, lang))  # fmt: skip
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.legend(fontsize=7, loc="upper right")
        title = label("outcome_per_hop", lang)
        ax.set_title(title)
        charts.append((title, _png(fig)))
    return charts


_STYLE = """
body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}thead th{background:#eef}
th:first-child{text-align:left}th[scope=row]{font-weight:normal}caption{text-align:left;font-weight:bold}
img{display:block;margin:1em 0;max-width:100%}
"""


def html_table(header: list[str], rows: list[list[Any]], caption: str | None = None) -> str:
    """An accessible table: column headers with scope="col", each row's first cell a
    row header (scope="row"); every cell escaped."""
    head = "".join(f'<th scope="col">{html.escape(str(h))}</th>' for h in header)
    body = "".join(
        f'<tr><th scope="row">{html.escape(str(row[0]))}</th>'
        + "".join(f"<td>{html.escape(str(c))}</td>" for c in row[1:])
        + "</tr>"
        for row in rows
    )
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def report_title(report: Report, lang: hz.Lang, line_name: str | None = None) -> str:
    """'Rapport de la ligne d'astreinte du 20/03/2026 au 04/04/2026, ligne Maintenance':
    the last day shown is the last one included (the end is exclusive)."""
    zone = ZoneInfo(report.timezone)
    first = report.since.astimezone(zone).date()
    last = (report.until.astimezone(zone) - timedelta(microseconds=1)).date()
    period = label("period_range", lang, since=hz.day_text(first, lang),
                   until=hz.day_text(last, lang))  # fmt: skip
    title = f"{label('report_title', lang)} {period}"
    if report.line:
        name = f"{line_name} ({report.line})" if line_name else report.line
        title += f", {label('line', lang, line=name)}"
    return title


def to_html(
    report: Report,
    lang: hz.Lang = "fr",
    names: Mapping[str, str] | None = None,
    line_name: str | None = None,
) -> str:
    """The report for people, in `lang`; `names` maps person ids to names (a person
    no longer in the configuration shows as the id)."""
    names = names or {}
    zone = ZoneInfo(report.timezone)
    title = report_title(report, lang, line_name)

    def share(count: int) -> str:
        return hz.percent(report.rate(count), lang)

    def sec(value: float | None) -> str:
        return hz.duration(value, lang)

    summary = html_table(
        [label("indicator", lang), label("value", lang), label("share", lang)],
        [
            [label("calls", lang), hz.number(report.total, lang), ""],
            [label("answered", lang), hz.number(report.answered, lang), share(report.answered)],
            [label("abandoned", lang), hz.number(report.abandoned, lang),
             share(report.abandoned)],
            [label("voicemail", lang), hz.number(report.voicemail, lang),
             share(report.voicemail)],
            [label("tta_median", lang), sec(report.tta_median), ""],
            [label("tta_p90", lang), sec(report.tta_p90), ""],
            [label("talk_total", lang), sec(report.talk_total), ""],
            [label("talk_mean", lang), sec(report.talk_mean), ""],
            [label("talk_median", lang), sec(report.talk_median), ""],
        ],
        caption=label("summary", lang),
    )  # fmt: skip
    people = html_table(
        [label(k, lang) for k in ("person", "rung", "accepted_n", "declined_n", "missed_n",
                                  "other_n")],
        sorted([names.get(p, p), s.rung, s.accepted, s.declined, s.missed, s.other]
               for p, s in report.per_person.items()),
    )  # fmt: skip
    images = "".join(
        f'<h2>{html.escape(name)}</h2><img alt="{html.escape(name)}" '
        f'src="data:image/png;base64,{data}">'
        for name, data in _charts(report, lang)
    )
    note = label("times_in", lang, zone=report.timezone, since=hz.when(report.since, zone, lang),
                 until=hz.when(report.until, zone, lang))  # fmt: skip
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(note)}</p>{summary}"
        f"<h2>{html.escape(label('per_person', lang))}</h2>{people}{images}</body></html>"
    )
