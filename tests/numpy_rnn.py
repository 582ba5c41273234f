"""The NumPy reference of the TF1 cell equations; it lives in `legacy_share.reference` now."""

from legacy_share.reference import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import
from legacy_share.reference import __all__  # noqa: F401
