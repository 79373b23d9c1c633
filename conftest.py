"""Root conftest: the crmcore fixtures for core, example and plugin tests alike."""

pytest_plugins = ["crmcore.pytest_plugin"]
