"""The service's collector tuning: the young generation holds a consumed batch's objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from service.serving import GC_GEN0_MAX, GC_GEN0_THRESHOLD, GC_OBJECTS_PER_RECORD, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


@pytest.mark.usefixtures("restored_gc")
def test_the_young_generation_holds_a_batch_of_records_within_bounds() -> None:
    tune_gc(1_000)
    assert GC_OBJECTS_PER_RECORD * 1_000 == gc.get_threshold()[0]
    tune_gc(10)  # a small batch: never below the per-claim floor
    assert GC_GEN0_THRESHOLD == gc.get_threshold()[0]
    tune_gc(50_000)  # the largest batch setting: one young collection stays short
    assert GC_GEN0_MAX == gc.get_threshold()[0]
