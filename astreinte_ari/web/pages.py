"""The HTML of the planning: plain string templates, every value escaped.

Mobile-first, semantic (nav, main, tables with captions and header cells,
labelled form fields), readable without JavaScript or CSS. Nothing from the
configuration or a request reaches the page without `e()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from html import escape
from urllib.parse import quote

from astreinte_ari.month_names import MONTHS
from astreinte_ari.web.auth import Viewer
from astreinte_ari.web.i18n import WEEKDAYS, word
from astreinte_ari.web.planning import Entry, LineNow, MonthView, RotaNow, YearView


def e(value: object) -> str:
    return escape(str(value), quote=True)


@dataclass(frozen=True, slots=True)
class PageContext:
    lang: str
    prefix: str  # public URL path: "" or "/astreinte"
    viewer: Viewer | None = None
    csrf: str | None = None
    teams: tuple[str, ...] = ()  # those the viewer sees
    changes: bool = False  # self-service changes are served (the nav links them)

    def w(self, key: str, **values: object) -> str:
        return e(word(key, self.lang, **values))

    def url(self, path: str) -> str:
        return e(self.prefix + path)


def csrf_field(ctx: PageContext) -> str:
    return f'<input type="hidden" name="csrf" value="{e(ctx.csrf or "")}">'


def layout(ctx: PageContext, title: str, body: str) -> str:
    nav = ""
    if ctx.viewer is not None:
        items = [f'<li><a href="{ctx.url("/")}">{ctx.w("now")}</a></li>']
        person = quote(ctx.viewer.person_id, safe="")
        items.append(
            f'<li><a href="{ctx.url(f"/people/{person}/month")}">{ctx.w("my_planning")}</a></li>'
        )
        if ctx.changes:
            items.append(f'<li><a href="{ctx.url("/changes")}">{ctx.w("changes")}</a></li>')
        for team in ctx.teams:
            href = ctx.url(f"/teams/{quote(team, safe='')}/month")
            items.append(f'<li><a href="{href}">{ctx.w("team")} {e(team)}</a></li>')
        items.append(
            f'<li><form method="post" action="{ctx.url("/logout")}">{csrf_field(ctx)}'
            f'<button type="submit">{ctx.w("sign_out")}</button></form></li>'
        )
        items.append(f'<li class="muted-h">{ctx.w("signed_in_as", name=ctx.viewer.name)}</li>')
        nav = f'<nav aria-label="{ctx.w("app")}"><ul>{"".join(items)}</ul></nav>'
    else:
        nav = f"<p>{ctx.w('app')}</p>"
    return (
        f'<!doctype html><html lang="{e(ctx.lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(title)} – {ctx.w('app')}</title>"
        f'<link rel="stylesheet" href="{ctx.url("/static/web.css")}"></head><body>'
        f'<a class="skip" href="#main">{ctx.w("skip")}</a><header>{nav}</header>'
        f'<main id="main"><h1>{e(title)}</h1>{body}</main></body></html>'
    )


def message_page(ctx: PageContext, title: str, text: str, error: bool = False) -> str:
    kind = "msg error" if error else "msg"
    return layout(ctx, title, f'<p class="{kind}" role="status">{e(text)}</p>')


def login_page(ctx: PageContext, notice: str | None = None) -> str:
    shown = f'<p class="msg" role="status">{e(notice)}</p>' if notice else ""
    body = (
        f"{shown}<p>{ctx.w('sign_in_intro')}</p>"
        f'<form method="post" action="{ctx.url("/login")}">'
        f'<label for="address">{ctx.w("address")}</label>'
        '<input id="address" name="address" type="text" inputmode="email" '
        'autocomplete="username" required maxlength="254">'
        f'<button class="primary" type="submit">{ctx.w("send_link")}</button></form>'
    )
    return layout(ctx, word("sign_in", ctx.lang), body)


def confirm_link_page(ctx: PageContext, token: str) -> str:
    # Mail scanners open links: the GET only shows this button, the POST signs in.
    body = (
        f'<form method="post" action="{ctx.url("/login/" + token)}">'
        f"<p>{ctx.w('confirm_sign_in')}</p>"
        f'<button class="primary" type="submit">{ctx.w("sign_in")}</button></form>'
    )
    return layout(ctx, word("sign_in", ctx.lang), body)


def _local(ctx: PageContext, at: datetime) -> str:
    day = f"{at.day} {MONTHS[ctx.lang][at.month - 1][: 4 if ctx.lang == 'fr' else 3]}"
    return f"{WEEKDAYS[ctx.lang][at.weekday()]} {day} {at:%H:%M}"


def _line_card(ctx: PageContext, line: LineNow) -> str:
    hops = "".join(
        f"<li><span class='who'>{e(', '.join(h.people))}</span> "
        f"<span class='muted'>({e(h.label)}, {ctx.w('timeout')} "
        f"{ctx.w('seconds', n=h.timeout_s)})</span></li>"
        for h in line.hops
    )
    final = ctx.w("final_voicemail" if line.final == "voicemail" else "final_hangup")
    return (
        f'<section class="card" aria-label="{e(line.name)}"><h3>{e(line.name)}</h3>'
        f'<p class="muted">{e(line.did)} · {ctx.w("team")} {e(line.team)} · '
        f"{ctx.w('period_' + line.period)}</p>"
        f'<ol class="cascade" aria-label="{ctx.w("cascade")}">{hops}</ol>'
        f"<p>{ctx.w('then')} : {final}</p></section>"
    ).replace(" : ", ": " if ctx.lang == "en" else " : ")


def now_page(ctx: PageContext, lines: list[LineNow], rotas: list[RotaNow]) -> str:
    cards = "".join(_line_card(ctx, line) for line in lines)
    rows = "".join(
        f"<tr><td>{e(r.team)}</td><th scope='row'>{e(r.rota)}</th>"
        f"<td class='who'>{e(r.person_name or word('nobody', ctx.lang))}</td>"
        f"<td>{e(_local(ctx, r.until)) if r.until else '–'}</td></tr>"
        for r in rotas
    )
    body = (
        f'<h2>{ctx.w("lines")}</h2><div class="cards">{cards}</div>'
        f'<h2>{ctx.w("rotas")}</h2><div class="scroll"><table><caption class="muted">'
        f'{ctx.w("on_call_now")}</caption><thead><tr><th scope="col">{ctx.w("team")}</th>'
        f'<th scope="col">{ctx.w("rota")}</th><th scope="col">{ctx.w("person")}</th>'
        f'<th scope="col">{ctx.w("until")}</th></tr></thead><tbody>{rows}</tbody></table></div>'
    )
    return layout(ctx, word("on_call_now", ctx.lang), body)


def entry_html(ctx: PageContext, item: Entry, extra: str = "") -> str:
    times = "" if item.whole_day else f" {item.start:%H:%M}–{item.end:%H:%M}"
    marked = item.source != "rotation"
    name = e(item.person_name)
    if marked:
        name = f'<span class="src-{e(item.source)}">{name} ({ctx.w("src_" + item.source)})</span>'
    notes = []
    if item.requested_by:
        notes.append(ctx.w("asked_by", who=item.requested_by))
    if item.reason:
        notes.append(ctx.w("why", why=item.reason))
    detail = f"<small>{' · '.join(notes)}</small>" if notes else ""
    return f"<div>{name}{e(times)}{detail}{extra}</div>"


def _pager(ctx: PageContext, base: str, prev: str, nxt: str, other: str, other_key: str) -> str:
    return (
        f'<p class="pager"><a href="{ctx.url(base)}?{e(prev)}" rel="prev">← {ctx.w("previous")}</a>'
        f'<a href="{ctx.url(base)}?{e(nxt)}" rel="next">{ctx.w("next")} →</a>'
        f'<a href="{ctx.url(other)}">{ctx.w(other_key)}</a></p>'
    )


def month_page(
    ctx: PageContext,
    title: str,
    base: str,
    views: Iterable[MonthView],
    today: date,
    actions: Callable[[str, Entry], str] | None = None,
    extra: str = "",
) -> str:
    """`base`: the page's path (month navigation); `actions(team, entry)`: extra HTML
    beside a shift (the link to ask for a change); `extra`: sections after the table."""
    parts: list[str] = []
    first = None
    for view in views:
        first = first or view
        head = "".join(f'<th scope="col">{e(r)}</th>' for r in view.rotas)
        rows = []
        for day in view.days:
            cells = []
            for rota in view.rotas:
                found = [x for x in day.entries if x.rota == rota]
                html = "".join(
                    entry_html(ctx, x, actions(view.team, x) if actions else "") for x in found
                )
                cells.append(f"<td>{html or '<span class=muted>–</span>'}</td>")
            marks = []
            if day.holiday:
                marks.append(ctx.w("public_holiday"))
            if day.closure:
                marks.append(ctx.w("closure"))
            note = f"<small>{', '.join(marks)}</small>" if marks else ""
            classes = " ".join(
                c
                for c, on in (("holiday", day.holiday or day.closure), ("today", day.day == today))
                if on
            )
            label = f"{WEEKDAYS[ctx.lang][day.day.weekday()]} {day.day.day}"
            rows.append(
                f'<tr class="{classes}"><th scope="row">{e(label)}{note}</th>{"".join(cells)}</tr>'
            )
        parts.append(
            f'<h2>{ctx.w("team")} {e(view.team)}</h2><div class="scroll"><table>'
            f'<caption class="muted">{e(MONTHS[ctx.lang][view.month - 1])} {view.year}</caption>'
            f'<thead><tr><th scope="col">{ctx.w("day")}</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
    pager = ""
    if first is not None:
        y, m = first.year, first.month
        prev = f"m={y - (m == 1)}-{(m - 2) % 12 + 1:02d}"
        nxt = f"m={y + (m == 12)}-{m % 12 + 1:02d}"
        pager = _pager(ctx, base, prev, nxt, base.rsplit("/", 1)[0] + f"/year?y={y}", "year")
    return layout(ctx, title, pager + "".join(parts) + extra)


def year_page(ctx: PageContext, title: str, base: str, views: Iterable[YearView]) -> str:
    parts: list[str] = []
    year = None
    for view in views:
        year = view.year
        by_month: dict[int, list[str]] = {}
        for item in view.entries:
            span = f"{_local(ctx, item.start)} → {_local(ctx, item.end)}"
            by_month.setdefault(item.start.month, []).append(
                f"<li><strong>{e(item.rota)}</strong> · {e(span)} {entry_html(ctx, item)}</li>"
            )
        months = "".join(
            f"<h3>{e(MONTHS[ctx.lang][m - 1])}</h3><ul>{''.join(items)}</ul>"
            for m, items in sorted(by_month.items())
        )
        hols = ", ".join(f"{d.day} {MONTHS[ctx.lang][d.month - 1]}" for d in view.holidays)
        parts.append(
            f"<h2>{ctx.w('team')} {e(view.team)}</h2>"
            f"<p><strong>{ctx.w('holidays_of_year')}</strong>: {e(hols or '–')}</p>{months}"
        )
    pager = ""
    if year is not None:
        pager = _pager(
            ctx, base, f"y={year - 1}", f"y={year + 1}", base.rsplit("/", 1)[0] + "/month", "month"
        )
    return layout(ctx, title, pager + "".join(parts))
