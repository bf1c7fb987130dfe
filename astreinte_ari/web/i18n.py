"""The words of the web pages, French and English, and which of the two to use."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {  # key: (fr, en)
    "app": ("Astreinte", "On call"),
    "skip": ("Aller au contenu", "Skip to content"),
    "sign_in": ("Connexion", "Sign in"),
    "sign_in_intro": (
        "Saisissez votre adresse e-mail ou votre numéro de mobile : vous recevrez un lien "
        "de connexion à usage unique.",
        "Type your email address or mobile number: you will receive a one-time sign-in link.",
    ),
    "address": ("E-mail ou mobile", "Email or mobile"),
    "send_link": ("Recevoir le lien", "Send me the link"),
    "link_sent": (
        "Si cette adresse est connue, un lien de connexion vient d'y être envoyé. Il est "
        "valable {minutes} minutes et ne sert qu'une fois.",
        "If this address is known, a sign-in link is on its way. It is valid for "
        "{minutes} minutes and works once.",
    ),
    "confirm_sign_in": (
        "Pour vous connecter, confirmez :",
        "To sign in, confirm:",
    ),
    "link_refused": (
        "Ce lien n'est plus valable (déjà utilisé ou expiré). Demandez-en un autre.",
        "This link no longer works (already used or expired). Ask for another one.",
    ),
    "sign_out": ("Déconnexion", "Sign out"),
    "signed_in_as": ("Connecté : {name}", "Signed in: {name}"),
    "now": ("Maintenant", "Now"),
    "on_call_now": ("D'astreinte maintenant", "On call now"),
    "lines": ("Lignes", "Lines"),
    "rotas": ("Tours d'astreinte", "Rotas"),
    "team": ("Équipe", "Team"),
    "rota": ("Tour", "Rota"),
    "person": ("Personne", "Person"),
    "until": ("jusqu'au", "until"),
    "nobody": ("personne", "nobody"),
    "period": ("Période", "Period"),
    "cascade": ("Cascade", "Cascade"),
    "step": ("Étape", "Step"),
    "timeout": ("Sonnerie", "Rings for"),
    "seconds": ("{n} s", "{n} s"),
    "then": ("Ensuite", "Then"),
    "final_voicemail": ("messagerie", "voicemail"),
    "final_hangup": ("fin d'appel", "hang up"),
    "forwarded": ("renvoi vers {to}", "forwarded to {to}"),
    "month": ("Mois", "Month"),
    "year": ("Année", "Year"),
    "previous": ("Précédent", "Previous"),
    "next": ("Suivant", "Next"),
    "day": ("Jour", "Day"),
    "public_holiday": ("jour férié", "public holiday"),
    "closure": ("fermeture", "closure"),
    "legend": ("Légende", "Legend"),
    "src_rotation": ("roulement", "rotation"),
    "src_swap": ("échange", "swap"),
    "src_override": ("remplacement", "override"),
    "src_holiday": ("règle jour férié", "holiday rule"),
    "src_closure": ("règle fermeture", "closure rule"),
    "asked_by": ("demandé par {who}", "asked by {who}"),
    "why": ("motif : {why}", "reason: {why}"),
    "my_planning": ("Mon planning", "My planning"),
    "from_to": ("{start} → {end}", "{start} → {end}"),
    "holidays_of_year": ("Jours fériés", "Public holidays"),
    "not_found": ("Page introuvable.", "Page not found."),
    "forbidden": ("Accès refusé.", "Access refused."),
    "csrf_refused": (
        "Requête refusée (jeton de sécurité absent ou périmé). Rechargez la page.",
        "Request refused (security token missing or stale). Reload the page.",
    ),
    "period_business": ("heures ouvrées", "business hours"),
    "period_after_hours": ("hors heures ouvrées", "after hours"),
    "period_night": ("nuit", "night"),
    "period_weekend": ("week-end", "weekend"),
    "period_holiday": ("jour férié", "public holiday"),
}

WEEKDAYS = {
    "fr": ("lun", "mar", "mer", "jeu", "ven", "sam", "dim"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def word(key: str, lang: str, **values: object) -> str:
    """The text for `key` (raw, not escaped: the page escapes it)."""
    pair = WORDS.get(key)
    text = key if pair is None else pair[1 if lang == "en" else 0]
    return text.format(**values) if values else text


def pick_language(default: str, accept_language: str | None) -> str:
    """fr or en: the browser's first preference among the two, else the service's
    `language:`."""
    if not accept_language:
        return default
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in ("fr", "en") and quality > 0:
            ranked.append((-quality, i, primary))
    return min(ranked)[2] if ranked else default


WORDS.update({
    "changes": ("Demandes de changement", "Change requests"),
    "change": ("Changer", "Change"),
    "change_slot": ("Demander un changement pour ce créneau", "Ask for a change of this slot"),
    "new_change": ("Demande de changement", "Change request"),
    "slot": ("Créneau", "Slot"),
    "held_by": ("Tenu par", "Held by"),
    "take_cover": ("Je prends ce créneau (remplacement)", "I take this slot (cover)"),
    "give_swap": ("Je cède ce créneau à un collègue (échange)",
                  "I give this slot to a colleague (swap)"),
    "colleague": ("Collègue", "Colleague"),
    "reason": ("Motif (facultatif)", "Reason (optional)"),
    "submit_change": ("Envoyer la demande", "Send the request"),
    "kind_cover": ("remplacement", "cover"),
    "kind_swap": ("échange", "swap"),
    "status_requested": ("en attente", "pending"),
    "status_approved": ("approuvée", "approved"),
    "status_refused": ("refusée", "refused"),
    "status_cancelled": ("annulée", "cancelled"),
    "requester": ("Demandeur", "Asked by"),
    "counterpart": ("Autre personne", "Other person"),
    "status": ("État", "Status"),
    "consented": ("accord de {who}", "{who} agreed"),
    "decided": ("décision de {who}", "decided by {who}"),
    "consent": ("Donner mon accord", "Agree"),
    "approve": ("Approuver", "Approve"),
    "refuse": ("Refuser", "Refuse"),
    "cancel": ("Annuler ma demande", "Cancel my request"),
    "note": ("Note (facultative)", "Note (optional)"),
    "why_short": ("Motif", "Reason"),
    "no_changes": ("Aucune demande.", "No request."),
    "change_sent": ("Demande {id} envoyée.", "Request {id} sent."),
    "change_done": ("Demande {id} : {status}.", "Request {id}: {status}."),
    "refused_rule": ("Refusé – règle « {rule} » : {message}", "Refused – rule “{rule}”: {message}"),
})  # fmt: skip

WORDS.update({
    "calendar": ("Agenda", "Calendar"),
    "calendar_intro": (
        "Abonnez votre agenda (Google Agenda, Outlook, Thunderbird) à vos astreintes : il "
        "suivra les changements tout seul. L'adresse est secrète et n'est montrée qu'une fois.",
        "Subscribe your calendar (Google Calendar, Outlook, Thunderbird) to your shifts: it "
        "follows the changes by itself. The address is secret and shown only once.",
    ),
    "team_calendar_intro": (
        "Une adresse d'agenda pour toute l'équipe (tous ses tours), secrète, montrée une fois.",
        "A calendar address for the whole team (every rota): secret, shown only once.",
    ),
    "calendar_unavailable": (
        "L'abonnement d'agenda n'est pas disponible : il est servi par le point d'accès des "
        "liens d'alerte, et la section « alerting » n'est pas configurée.",
        "The calendar subscription is not available: the alert links endpoint serves it, "
        "and `alerting:` is not configured.",
    ),
    "subscribe": ("Créer une adresse d'abonnement", "Create a subscription address"),
    "feed_url": ("Adresse d'abonnement (copiez-la maintenant)",
                 "Subscription address (copy it now)"),
    "feed_shown_once": (
        "Elle ne sera plus jamais affichée. Perdue ? Révoquez-la et créez-en une autre.",
        "It will never be shown again. Lost it? Revoke it and create another one.",
    ),
    "howto_google": ("Google Agenda : Autres agendas → + → À partir de l'URL.",
                     "Google Calendar: Other calendars → + → From URL."),
    "howto_outlook": ("Outlook : Ajouter un calendrier → S'abonner à partir du web.",
                      "Outlook: Add calendar → Subscribe from web."),
    "howto_thunderbird": ("Thunderbird : Nouvel agenda → Sur le réseau → coller l'adresse.",
                          "Thunderbird: New Calendar → On the Network → paste the address."),
    "howto_more": ("Détails : docs/rotas.md, « Calendar subscription ».",
                   "Details: docs/rotas.md, “Calendar subscription”."),
    "active_feeds": ("Adresses actives", "Active addresses"),
    "no_feeds": ("Aucune adresse active.", "No active address."),
    "created": ("Créée", "Created"),
    "by": ("par", "by"),
    "revoke": ("Révoquer", "Revoke"),
    "feed_revoked": ("Adresse {id} révoquée.", "Address {id} revoked."),
    "back": ("Retour", "Back"),
})  # fmt: skip
