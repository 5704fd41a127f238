"""The suite's fixtures are plugins in tests/support (loaded here); helpers are there too."""

pytest_plugins = [
    "tests.support.leaks", "tests.support.database", "tests.support.aws", "tests.support.doors",
]
