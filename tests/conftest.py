pytest_plugins = ["tests.rig.db_fixtures"]
