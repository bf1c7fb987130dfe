"""HTTP endpoints: metrics and health, alert links."""
