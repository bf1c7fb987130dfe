"""SQLAlchemy store. Feature table modules are imported here so that every table
is on the shared models.metadata (Alembic autogenerate, the models-vs-migrations test)."""

from astreinte_ari.adapters.store import alert_links as _alert_links  # noqa: F401  (0007)
from astreinte_ari.adapters.store import alerts as _alerts  # noqa: F401  (tables of 0004)
from astreinte_ari.adapters.store import (  # noqa: F401  (tables of 0008)
    audit_checkpoints as _audit_checkpoints,
)
from astreinte_ari.adapters.store import audit_log as _audit_log  # noqa: F401  (tables of 0003)
from astreinte_ari.adapters.store import (  # noqa: F401  (tables of 0002)
    config_versions as _config_versions,
)
from astreinte_ari.adapters.store import (  # noqa: F401  (tables of 0013)
    web_sessions as _web_sessions,
)
