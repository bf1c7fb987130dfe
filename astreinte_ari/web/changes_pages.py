"""The HTML of self-service changes: the request form and the list with its buttons."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from astreinte_ari.config.model import AppConfig
from astreinte_ari.schedule.changes import ChangeRequest
from astreinte_ari.web.i18n import word
from astreinte_ari.web.pages import PageContext, csrf_field, e, layout
from astreinte_ari.web.planning import Entry


@dataclass(frozen=True, slots=True)
class Slot:
    team: str
    rota: str
    start: datetime  # aware
    end: datetime
    holder: str  # person id


def change_link(ctx: PageContext, team: str, item: Entry) -> str:
    """The small link beside a shift that opens the request form."""
    query = urlencode(
        {"team": team, "rota": item.rota, "start": item.start.isoformat(),
         "end": item.end.isoformat()}
    )  # fmt: skip
    return (
        f' <a class="chg" href="{ctx.url("/changes/new")}?{e(query)}" '
        f'aria-label="{ctx.w("change_slot")}">{ctx.w("change")}</a>'
    )


def _when(at: datetime, zone: ZoneInfo) -> str:
    return f"{at.astimezone(zone):%Y-%m-%d %H:%M}"


def _name(config: AppConfig, team: str, person: str) -> str:
    found = config.teams.get(team)
    who = found.people.get(person) if found else None
    return who.name if who else person


def form_page(
    ctx: PageContext, config: AppConfig, slot: Slot, me: str, error: str | None = None
) -> str:
    zone = ZoneInfo(config.teams[slot.team].timezone or config.timezone)
    mine = slot.holder == me
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{e(v)}">'
        for k, v in (("team", slot.team), ("rota", slot.rota),
                     ("start", slot.start.isoformat()), ("end", slot.end.isoformat()))
    )  # fmt: skip
    if mine:
        options = "".join(
            f'<option value="{e(pid)}">{e(p.name)}</option>'
            for pid, p in config.teams[slot.team].people.items()
            if pid != me
        )
        choice = (
            '<input type="hidden" name="kind" value="swap">'
            f"<p>{ctx.w('give_swap')}</p>"
            f'<label for="counterpart">{ctx.w("colleague")}</label>'
            f'<select id="counterpart" name="counterpart" required>{options}</select>'
        )
    else:
        choice = f'<input type="hidden" name="kind" value="cover"><p>{ctx.w("take_cover")}</p>'
    shown = f'<p class="msg error" role="alert">{e(error)}</p>' if error else ""
    body = (
        f"{shown}<dl><dt>{ctx.w('team')}</dt><dd>{e(slot.team)}</dd>"
        f"<dt>{ctx.w('rota')}</dt><dd>{e(slot.rota)}</dd>"
        f"<dt>{ctx.w('slot')}</dt>"
        f"<dd>{e(_when(slot.start, zone))} → {e(_when(slot.end, zone))}</dd>"
        f"<dt>{ctx.w('held_by')}</dt><dd>{e(_name(config, slot.team, slot.holder))}</dd></dl>"
        f'<form method="post" action="{ctx.url("/changes")}">{csrf_field(ctx)}{hidden}{choice}'
        f'<label for="reason">{ctx.w("reason")}</label>'
        '<input id="reason" name="reason" type="text" maxlength="500">'
        f'<button class="primary" type="submit">{ctx.w("submit_change")}</button></form>'
    )
    return layout(ctx, word("new_change", ctx.lang), body)


def _button(ctx: PageContext, request_id: str, action: str, with_note: bool = False) -> str:
    note = ""
    if with_note:
        field_id = f"note-{e(request_id)}-{action}"
        note = (
            f'<label for="{field_id}">{ctx.w("note")}</label>'
            f'<input id="{field_id}" name="note" type="text" maxlength="300">'
        )
    return (
        f'<form method="post" action="{ctx.url(f"/changes/{request_id}/{action}")}">'
        f"{csrf_field(ctx)}{note}"
        f'<button class="primary" type="submit">{ctx.w(action)}</button></form>'
    )


def list_page(
    ctx: PageContext,
    config: AppConfig,
    requests: list[ChangeRequest],
    manages: Callable[[str], bool],
    notice: str | None = None,
    error: str | None = None,
) -> str:
    viewer = ctx.viewer
    assert viewer is not None
    me = viewer.person_id
    cards = []
    for r in requests:
        team = config.teams.get(r.team)
        zone = ZoneInfo((team.timezone if team else None) or config.timezone)
        slot = f"{_when(r.start, zone)} → {_when(r.end, zone)}"
        if r.swap_start and r.swap_end:
            slot += f" ⇄ {_when(r.swap_start, zone)} → {_when(r.swap_end, zone)}"
        facts = [
            f"<dt>{ctx.w('requester')}</dt><dd>{e(_name(config, r.team, r.requester))}</dd>",
            f"<dt>{ctx.w('counterpart')}</dt><dd>{e(_name(config, r.team, r.counterpart))}</dd>",
            f"<dt>{ctx.w('slot')}</dt><dd>{e(slot)}</dd>",
            f"<dt>{ctx.w('status')}</dt>"
            f"<dd class='status-{e(r.status)}'>{ctx.w('status_' + r.status)}"
            + (
                f" · {ctx.w('consented', who=_name(config, r.team, r.counterpart))}"
                if r.consented
                else ""
            )
            + (
                f" · {ctx.w('decided', who=_name(config, r.team, r.decided_by))}"
                if r.decided_by
                else ""
            )
            + "</dd>",
        ]
        if r.reason:
            facts.append(f"<dt>{ctx.w('why_short')}</dt><dd>{e(r.reason)}</dd>")
        if r.decision_note:
            facts.append(f"<dt>{ctx.w('note')}</dt><dd>{e(r.decision_note)}</dd>")
        buttons = []
        if r.pending:
            counterpart = r.kind == "swap" and r.counterpart == me
            if counterpart and not r.consented:
                buttons.append(_button(ctx, r.id, "consent"))
            if counterpart and not manages(r.team):  # the colleague asked may say no
                buttons.append(_button(ctx, r.id, "refuse", with_note=True))
            if manages(r.team):
                buttons.append(_button(ctx, r.id, "approve", with_note=True))
                buttons.append(_button(ctx, r.id, "refuse", with_note=True))
            if r.requester == me:
                buttons.append(_button(ctx, r.id, "cancel"))
        title = f"{r.id} · {word_kind(ctx, r.kind)} · {r.team}/{r.rota}"
        cards.append(
            f'<section class="card" aria-label="{e(title)}"><h3>{e(title)}</h3>'
            f"<dl>{''.join(facts)}</dl>{''.join(buttons)}</section>"
        )
    shown = ""
    if notice:
        shown += f'<p class="msg" role="status">{e(notice)}</p>'
    if error:
        shown += f'<p class="msg error" role="alert">{e(error)}</p>'
    listed = f'<div class="cards">{"".join(cards)}</div>' if cards else ""
    body = shown + (listed or f"<p>{ctx.w('no_changes')}</p>")
    return layout(ctx, word("changes", ctx.lang), body)


def word_kind(ctx: PageContext, kind: str) -> str:
    return ctx.w("kind_" + kind)
