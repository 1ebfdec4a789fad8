pytest_plugins = ["tests.fixtures.redis_server", "tests.fixtures.emulators", "tests.fixtures.proxy"]
