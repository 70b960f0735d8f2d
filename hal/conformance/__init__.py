"""The hal conformance suite: a pytest suite that any backend runs unchanged.

    hal conformance <backend> [--json FILE]
    pytest --pyargs hal.conformance --hal-backend=<backend>

Each test is tagged ``@pytest.mark.feature("<hal.Feature>")``; a device that does
not declare the feature skips it with that reason. A backend's
``known_failures`` run as strict xfails (``HAL_CONFORMANCE_RUN_KNOWN_FAILURES=1``
runs them as ordinary tests). The run ends with a feature x outcome matrix.
"""
