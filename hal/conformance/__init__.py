"""The hal conformance suite: a pytest suite that any backend runs unchanged.

    hal conformance <backend> [--json FILE] [--junit FILE]
    pytest --pyargs hal.conformance --hal-backend=<backend>

Each test is tagged ``@pytest.mark.feature("<hal.Feature>")``; a device that does
not declare the feature skips it with that reason. A backend's
``known_failures`` run as strict xfails (``HAL_CONFORMANCE_RUN_KNOWN_FAILURES=1``
runs them as ordinary tests). The run ends with a feature x outcome matrix; the
JSON report holds each test's outcome, duration, failure message or skip reason.
A vendor's own tests can compare arrays as the suite does, with a one-line
mismatch summary: :func:`assert_array_equal`, :func:`assert_allclose`.
"""

from ._compare import assert_allclose, assert_array_equal

__all__ = ["assert_allclose", "assert_array_equal"]
