"""Month names in the languages the product speaks (reports and the web planning):
a ground-floor module, so neither of those two layers imports the other."""

from __future__ import annotations

MONTHS = {
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}  # fmt: skip
