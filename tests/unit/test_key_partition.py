"""A keyed verdict goes where the Java client (and aiokafka's default partitioner) puts its key."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from service.packing import key_partition

_DEFAULT = DefaultPartitioner()


@settings(max_examples=2_000)
@given(key=st.binary(max_size=64), count=st.integers(min_value=1, max_value=64))
def test_the_partition_of_a_key_is_aiokafkas_default(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert _DEFAULT(key, partitions, partitions) == key_partition(key, partitions)


# Utils.murmur2 of the Java client, from Kafka's own UtilsTest.testMurmur2.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_the_partition_is_the_java_clients_murmur2_made_positive() -> None:
    """Among 2**31 partitions the partition is the murmur2 value itself, made positive."""
    every = range(2**31)
    assert {k: key_partition(k, every) for k in JAVA_MURMUR2} == {
        k: h & 0x7FFFFFFF for k, h in JAVA_MURMUR2.items()
    }
