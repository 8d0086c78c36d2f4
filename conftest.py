"""Root conftest: registers the suite's step definitions once for every test run."""

pytest_plugins = ["conformance.steps.world", "conformance.steps.common", "conformance.steps.distribution",
                  "conformance.steps.plugins"]
