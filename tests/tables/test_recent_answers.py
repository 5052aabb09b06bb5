"""A window of recent answers, one key per answer: looked up by id, bounded by age, and safe
against a crash that stored answers without the value that counts them."""

from __future__ import annotations

from tables.recent_answers import RecentAnswers
from tests.tables.memory_store import MemoryStore


def test_an_answer_is_found_again_and_can_be_changed():
    store = MemoryStore()
    answers = RecentAnswers(store, "mug", "answers", capacity=10, next=0)
    answers["o1"] = "reserved"
    assert answers.get("o1") == "reserved" and "o1" in answers and "o2" not in answers
    answers["o1"] = "released"
    assert answers["o1"] == "released" and answers.next == 1, "a change takes no new place"


def test_the_window_keeps_the_newest_answers_and_deletes_the_oldest_keys():
    store = MemoryStore()
    answers = RecentAnswers(store, "pool", "answers", capacity=3, next=0)
    for n in range(5):
        answers[f"r{n}"] = n
    assert [f"r{n}" in answers for n in range(5)] == [False, False, True, True, True]
    kinds = [key.rsplit(b"\0", 1)[1][:1] for key in store.live_keys()]
    assert kinds.count(b"a") == 3, "the answers that left the window are deleted"
    assert kinds.count(b"s") == 3


def test_answers_stored_without_the_value_that_counts_them_do_not_count():
    """A crash left a prefix of a flush in the changelog: the answer's key, not the owner's
    value with the new ``next``. The replayed request finds no answer and is answered again."""
    store = MemoryStore()
    answers = RecentAnswers(store, "pool", "answers", capacity=10, next=4)
    answers["r9"] = "CODE-A"
    assert answers.next == 5
    restored = RecentAnswers(store, "pool", "answers", capacity=10, next=4)
    assert "r9" not in restored
    restored["r9"] = "CODE-A"
    assert restored["r9"] == "CODE-A" and restored.next == 5


def test_owners_do_not_see_each_others_answers():
    store = MemoryStore()
    RecentAnswers(store, "mug", "answers", capacity=10, next=0)["o1"] = "reserved"
    assert "o1" not in RecentAnswers(store, "cap", "answers", capacity=10, next=1)
