"""The planning in a browser: pages, sign-in and roles (pure; adapters/http serves it)."""
