"""astreinte-ari: an on-call telephone line on Asterisk, driven over ARI."""

__version__ = "0.1.0"
