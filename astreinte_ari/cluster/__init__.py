"""Several nodes, one database: leader election and the node-lost sweep (pure core)."""
