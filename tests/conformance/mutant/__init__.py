"""A reference backend with a switch per planted bug, and a driver that runs the unchanged
conformance suite against each: the mutation self-test of the suite (tests/conformance/test_mutants.py).

    python -m tests.conformance.mutant                  # every bug in turn (see bugs.py)
    python -m tests.conformance.mutant noop_wait -v     # one bug, the suite's output shown
"""
