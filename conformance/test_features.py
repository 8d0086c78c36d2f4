"""Every scenario of features/ becomes a test, run against the selected target."""

from pathlib import Path

from pytest_bdd import scenarios

FEATURES = Path(__file__).resolve().parent.parent / "features"

scenarios(str(FEATURES))
