"""The words of reports and statements, French and English, by stable key.

The keys are those of the machine formats (JSON fields, CSV `item` values,
call and hop outcomes): documents for people show `label(key, lang)`, machine
formats keep the key. A key without a label shows as itself (a new outcome is
never hidden), and tests/unit/test_humanize.py checks that every key the code
emits has one.
"""

from __future__ import annotations

from astreinte_ari.reports.humanize import Lang

_LABELS: dict[str, tuple[str, str]] = {  # key: (fr, en)
    # KPI report
    "report_title": ("Rapport de la ligne d'astreinte", "On-call line report"),
    "period_range": ("du {since} au {until}", "from {since} to {until}"),
    "line": ("ligne {line}", "line {line}"),
    "all_lines": ("toutes les lignes", "all lines"),
    "times_in": ("Heures en {zone} ; période du {since} (inclus) au {until} (exclu).",
                 "Times in {zone}; period from {since} (inclusive) to {until} (exclusive)."),
    "summary": ("Synthèse", "Summary"),
    "indicator": ("Indicateur", "Indicator"),
    "value": ("Valeur", "Value"),
    "share": ("Part des appels", "Share of calls"),
    "calls": ("Appels", "Calls"),
    "answered": ("Décrochés (pris par une personne)", "Answered (taken by a person)"),
    "abandoned": ("Abandonnés", "Abandoned"),
    "voicemail": ("Messagerie", "Voicemail"),
    "tta_median": ("Délai de prise d'appel, médiane", "Time to answer, median"),
    "tta_p90": ("Délai de prise d'appel, 90e centile", "Time to answer, 90th percentile"),
    "talk_total": ("Temps de conversation, total", "Talk time, total"),
    "talk_mean": ("Temps de conversation, moyenne", "Talk time, mean"),
    "talk_median": ("Temps de conversation, médiane", "Talk time, median"),
    "per_person": ("Par personne", "Per person"),
    "person": ("Personne", "Person"),
    "rung": ("Sollicitée", "Rung"),
    "accepted_n": ("Acceptés", "Accepted"),
    "declined_n": ("Refusés", "Declined"),
    "missed_n": ("Manqués", "Missed"),
    "other_n": ("Autres", "Other"),
    "calls_per_day": ("Appels par jour", "Calls per day"),
    "calls_per_hour": ("Appels par heure de la semaine (heure locale)",
                       "Calls per hour of the week (local time)"),
    "call_outcomes": ("Issue des appels", "Call outcomes"),
    "outcome_per_hop": ("Issue par étape de la cascade", "Outcome per hop of the cascade"),
    "hop_n": ("étape {n}", "hop {n}"),
    # call outcomes (callflow.outcomes.CallOutcome) and hop outcomes (HopOutcome)
    "accepted": ("accepté", "accepted"),
    "connected": ("transféré et décroché", "forwarded, answered"),
    "voicemail_empty": ("messagerie sans message", "voicemail, no message"),
    "no_one": ("personne de joignable", "no one reached"),
    "failed": ("échec technique", "technical failure"),
    "node_lost": ("nœud perdu", "node lost"),
    "test_passed": ("appel test réussi", "test call passed"),
    "test_failed": ("appel test en échec", "test call failed"),
    "in_progress": ("en cours", "in progress"),
    "declined": ("refusé", "declined"),
    "not_accepted": ("décroché sans acceptation", "answered, not accepted"),
    "no_answer": ("sans réponse", "no answer"),
    "busy": ("occupé", "busy"),
    "rejected": ("rejeté", "rejected"),
    "unreachable": ("injoignable", "unreachable"),
    "cancelled": ("annulé (l'appelant a raccroché)", "cancelled (caller hung up)"),
    "refused": ("numéro non autorisé", "number not allowed"),
    "skipped": ("passé (déjà en ligne)", "skipped (on another call)"),
    # monthly statement (reports/statement.py; CSV `item` values)
    "statement_heading": ("Relevé d'astreinte {month} : {name}",
                          "On-call statement {month}: {name}"),
    "statements_title": ("Relevés d'astreinte", "On-call statements"),
    "periods_on_call": ("Périodes d'astreinte", "Periods on call"),
    "from": ("Début", "From"),
    "to": ("Fin", "To"),
    "rota": ("Tour de garde", "Rota"),
    "duration": ("Durée", "Duration"),
    "call": ("Appel", "Call"),
    "started": ("Début", "Started"),
    "interventions_h": ("Interventions", "Interventions"),
    "on_call_time": ("Temps d'astreinte", "Time on call"),
    "day_kind": ("Type de jour", "Kind of day"),
    "compensation": ("Indemnisation", "Compensation"),
    "item": ("Poste", "Item"),
    "amount": ("Montant", "Amount"),
    "total": ("Total", "Total"),
    "rest_warnings": ("Alertes repos", "Rest-rule warnings"),
    "none": ("aucune", "none"),
    "rotation": ("roulement", "rotation"),
    "override": ("remplacement", "override"),
    "period": ("Période d'astreinte", "Period on call"),
    "intervention": ("Intervention", "Intervention"),
    "periods": ("Forfait par période", "Flat rate per period"),
    "interventions": ("Interventions (majorations comprises)",
                      "Interventions (majorations included)"),
    "on_call_weekday": ("Astreinte semaine (jour ouvré)", "On call, weekday"),
    "on_call_weekend": ("Astreinte week-end", "On call, weekend"),
    "on_call_holiday": ("Astreinte jour férié", "On call, public holiday"),
    "on_call_hours_weekday": ("Heures d'astreinte, jour ouvré", "Hours on call, weekday"),
    "on_call_hours_weekend": ("Heures d'astreinte, week-end", "Hours on call, weekend"),
    "on_call_hours_holiday": ("Heures d'astreinte, jour férié", "Hours on call, public holiday"),
    "amount_periods": ("Montant : forfait par période", "Amount: flat rate per period"),
    "amount_on_call_weekday": ("Montant : astreinte semaine", "Amount: on call, weekday"),
    "amount_on_call_weekend": ("Montant : astreinte week-end", "Amount: on call, weekend"),
    "amount_on_call_holiday": ("Montant : astreinte jour férié",
                               "Amount: on call, public holiday"),
    "amount_interventions": ("Montant : interventions", "Amount: interventions"),
    "weekday": ("Jour ouvré", "Weekday"),
    "weekend": ("Week-end", "Weekend"),
    "holiday": ("Jour férié", "Public holiday"),
    "warning": ("Alerte repos", "Rest-rule warning"),
    "rest_interrupted": (
        "repos interrompu : intervention le {at}, {gap} seulement après la précédente "
        "(règle : {rule})",
        "rest interrupted: intervention on {at}, only {gap} after the previous one "
        "(rule: {rule})",
    ),
}  # fmt: skip


def label(key: str, lang: Lang, **values: str) -> str:
    """The words for `key` in `lang`, `values` filled in; the key itself if unknown."""
    pair = _LABELS.get(key)
    if pair is None:
        return key
    text = pair[0] if lang == "fr" else pair[1]
    return text.format(**values) if values else text


def has_label(key: str) -> bool:
    return key in _LABELS
