"""The monthly statements for people: print-ready HTML, one page per person, in
French or English, with names, local dates, "3 h 08 min" and labelled amounts.

The CSV (statement.to_csv) stays the machine format: raw keys and decimal hours.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from astreinte_ari.reports import humanize as hz
from astreinte_ari.reports.labels import label
from astreinte_ari.reports.render import html_table
from astreinte_ari.reports.statement import Statement

_STYLE = (
    "body{font-family:sans-serif}table{border-collapse:collapse;margin:.5em 0 1em}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}thead th{background:#eef}"
    "td:last-child{text-align:right}th[scope=row]{font-weight:normal}"
    "tfoot th,tfoot td{font-weight:bold}"
)


def _section(st: Statement, zone: ZoneInfo, lang: hz.Lang, name: str) -> str:
    def words(key: str, **values: str) -> str:
        return html.escape(label(key, lang, **values))

    periods = html_table(
        [label("from", lang), label("to", lang), label("rota", lang), label("duration", lang)],
        [[hz.when(p.start, zone, lang), hz.when(p.end, zone, lang),
          f"{p.team}/{p.rota} ({label(p.source, lang)})",
          hz.duration((p.end - p.start).total_seconds(), lang)] for p in st.periods],
    )  # fmt: skip
    calls = html_table(
        [label("started", lang), label("call", lang), label("duration", lang)],
        [[hz.when(i.start, zone, lang), i.call_id,
          hz.duration((i.end - i.start).total_seconds(), lang)] for i in st.interventions],
    )  # fmt: skip
    on_call = html_table(
        [label("day_kind", lang), label("duration", lang)],
        [[label(kind, lang), hz.hours(value, lang)] for kind, value in st.on_call_hours.items()],
    )
    amounts = html_table(
        [label("item", lang), label("amount", lang)],
        [
            [label(key, lang), hz.money(value, st.currency, lang)]
            for key, value in st.amounts.items()
        ],
    )
    total = (
        f'<tfoot><tr><th scope="row">{words("total")}</th>'
        f"<td>{html.escape(hz.money(st.total, st.currency, lang))}</td></tr></tfoot></table>"
    )
    amounts = amounts.removesuffix("</table>") + total
    warnings = "".join(
        "<li>"
        + words("rest_interrupted", at=hz.when(b.at, zone, lang),
                gap=hz.hours(b.gap_hours, lang), rule=hz.hours(b.rule_hours, lang))
        + "</li>"
        for b in st.rest_breaks
    ) or f"<li>{words('none')}</li>"  # fmt: skip
    title = label("statement_heading", lang, month=hz.month_text(st.month, lang), name=name)
    length = hz.duration(st.intervention_hours * 3600, lang)
    return (
        f'<section style="page-break-after:always"><h1>{html.escape(title)}</h1>'
        f"<h2>{words('periods_on_call')} ({len(st.periods)})</h2>{periods}"
        f"<h2>{words('on_call_time')}</h2>{on_call}"
        f"<h2>{words('interventions_h')} ({len(st.interventions)}, {html.escape(length)})</h2>"
        f"{calls}<h2>{words('compensation')}</h2>{amounts}"
        f"<h2>{words('rest_warnings')}</h2><ul>{warnings}</ul></section>"
    )


def to_html(
    statements: list[Statement],
    zone: ZoneInfo,
    lang: hz.Lang = "fr",
    names: Mapping[str, str] | None = None,
) -> str:
    """Print-ready HTML (page-break CSS: print to PDF from a browser); `names` maps
    person ids to names (someone no longer in the configuration shows as the id)."""
    names = names or {}
    parts = [_section(st, zone, lang, names.get(st.person, st.person)) for st in statements]
    months = sorted({st.month for st in statements})
    title = label("statements_title", lang)
    if months:
        title += " " + ", ".join(hz.month_text(m, lang) for m in months)
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(parts)}</body></html>"
    )
