"""The "Calendar" section of a person's or a team's planning page, and the page
that shows a new subscription URL (once: only its hash is kept)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from astreinte_ari.web.pages import PageContext, csrf_field, e, layout
from astreinte_ari.web.ports import Feed


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _feed_rows(ctx: PageContext, feeds: Sequence[Feed]) -> str:
    if not feeds:
        return f'<p class="muted">{ctx.w("no_feeds")}</p>'
    rows = "".join(
        f"<li><span>{e(f.id)} · {e(f.person or f.team)} · {ctx.w('created')} "
        f"{e(_when(f.created_at))} {ctx.w('by')} {e(f.created_by)}</span> "
        f'<form method="post" action="{ctx.url(f"/feeds/{f.id}/revoke")}" class="inline">'
        f'{csrf_field(ctx)}<button type="submit">{ctx.w("revoke")}</button></form></li>'
        for f in feeds
    )
    return f'<h3>{ctx.w("active_feeds")}</h3><ul class="feeds">{rows}</ul>'


def feed_section(
    ctx: PageContext,
    *,
    intro: str,
    create_path: str | None,
    teams: Sequence[str],
    feeds: Sequence[Feed],
    available: bool,
) -> str:
    """`create_path`: where the subscribe button posts (None: no button, e.g. an admin
    on someone else's page); `teams`: a person's teams, to pick one if several."""
    parts = [f'<section id="calendar" aria-labelledby="calendar-h">'
             f'<h2 id="calendar-h">{ctx.w("calendar")}</h2>']  # fmt: skip
    if not available:
        parts.append(f'<p class="msg" role="status">{ctx.w("calendar_unavailable")}</p>')
    elif create_path is not None:
        if len(teams) > 1:
            options = "".join(f'<option value="{e(t)}">{e(t)}</option>' for t in teams)
            pick = (
                f'<label for="feed-team">{ctx.w("team")}</label>'
                f'<select id="feed-team" name="team">{options}</select>'
            )
        else:
            pick = "".join(f'<input type="hidden" name="team" value="{e(t)}">' for t in teams)
        parts.append(
            f"<p>{ctx.w(intro)}</p>"
            f'<form method="post" action="{ctx.url(create_path)}">{csrf_field(ctx)}{pick}'
            f'<button class="primary" type="submit">{ctx.w("subscribe")}</button></form>'
        )
    parts.append(_feed_rows(ctx, feeds))
    return "".join(parts) + "</section>"


def feed_created_page(ctx: PageContext, title: str, url: str, back: str) -> str:
    body = (
        f'<p class="msg" role="status">{ctx.w("feed_shown_once")}</p>'
        f'<label for="feed-url">{ctx.w("feed_url")}</label>'
        f'<input id="feed-url" name="feed-url" type="text" readonly value="{e(url)}" '
        'spellcheck="false" autocomplete="off">'
        f"<ul><li>{ctx.w('howto_google')}</li><li>{ctx.w('howto_outlook')}</li>"
        f"<li>{ctx.w('howto_thunderbird')}</li></ul><p class='muted'>{ctx.w('howto_more')}</p>"
        f'<p><a href="{ctx.url(back)}">{ctx.w("back")}</a></p>'
    )
    return layout(ctx, title, body)
