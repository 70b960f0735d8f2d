"""hal.backend.Waiter: bounded waits over a blocking driver call, from several threads."""

from __future__ import annotations

import threading

from hal.backend import Waiter


class Work:
    """A token whose work ends when ``finish`` is called; counts the blocking calls made for it."""

    def __init__(self) -> None:
        self.over = threading.Event()
        self.blocked = 0

    def finish(self) -> None:
        self.over.set()


def make_waiter() -> Waiter[Work]:
    def block(work: Work) -> None:
        work.blocked += 1
        work.over.wait()

    return Waiter(lambda work: work.over.is_set(), block)


def test_finished_work_returns_at_once_without_a_thread() -> None:
    waiter, work = make_waiter(), Work()
    work.finish()
    assert waiter.wait(work, 1.0)
    assert work.blocked == 0


def test_a_time_limit_runs_out_and_the_next_slices_reuse_one_blocking_call() -> None:
    waiter, work = make_waiter(), Work()
    assert not waiter.wait(work, 0.01)
    assert not waiter.wait(work, 0.01)
    threading.Timer(0.02, work.finish).start()
    assert waiter.wait(work, 10.0)
    assert work.blocked == 1
    waiter.close()


def test_threads_waiting_on_their_own_work_all_see_it_end() -> None:
    waiter = make_waiter()
    for _ in range(20):
        works = [Work() for _ in range(6)]
        results: list[bool] = []
        threads = [threading.Thread(target=lambda w=w, r=results: r.append(waiter.wait(w, 10.0))) for w in works]
        for t in threads:
            t.start()
        for w in reversed(works):
            w.finish()
        for t in threads:
            t.join()
        assert results == [True] * len(works)
    waiter.close()


def test_work_that_ended_after_a_wait_timed_out_is_asked_for_again() -> None:
    waiter = make_waiter()
    first, second = Work(), Work()
    assert not waiter.wait(first, 0.001)
    first.finish()
    assert waiter.wait(first, 10.0)
    threading.Timer(0.01, second.finish).start()
    assert waiter.wait(second, 10.0)
    waiter.close()
