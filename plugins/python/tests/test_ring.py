import os
import random

from helpers import Host  # noqa: F401  (puts the package on sys.path)

from citadel_plugin import handshake
from citadel_plugin.ring import KIND_REQUEST, Consumer, Producer, Ring, RingFull, TooLarge, record_len


def _pair(capacity=4096):
    ring = Ring.create(capacity)
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    return Producer(ring, efd), Consumer(ring, efd)


def test_random_sizes_wrap_around_in_order():
    producer, consumer = _pair()
    rng = random.Random(7)
    sent = received = 0
    while received < 3000:
        for _ in range(rng.randrange(1, 8)):
            payload = bytes([sent % 251]) * rng.randrange(0, 900)
            try:
                producer.send(sent, payload, kind=KIND_REQUEST)
                sent += 1
            except RingFull:
                break
        for _ in range(rng.randrange(1, 8)):
            rec = consumer.read()
            if rec is None:
                break
            assert rec.id == received
            assert rec.payload == bytes([received % 251]) * len(rec.payload)
            received += 1
        consumer.commit_read()
    assert producer.head > 4 * producer.ring.capacity  # wrapped several times


def test_full_ring_and_too_large():
    producer, consumer = _pair()
    n = 0
    try:
        while True:
            producer.send(n, b"x" * 100)
            n += 1
    except RingFull:
        pass
    assert n == 4096 // record_len(100)
    while consumer.read() is not None:
        pass
    try:
        producer.send(n, b"x" * 100)
        raise AssertionError("reading alone must not free space")
    except RingFull:
        pass
    consumer.commit_read()
    producer.send(n, b"x" * 100)
    try:
        producer.send(n, b"x" * 4096)
        raise AssertionError("expected TooLarge")
    except TooLarge:
        pass


def test_restarted_consumer_gets_uncommitted_records_with_attempts():
    producer, consumer = _pair()
    for i in range(3):
        producer.send(i, b"r%d" % i)
    first = consumer.read()
    assert consumer.mark_delivery(first) == 1
    consumer.commit_read()
    assert consumer.mark_delivery(consumer.read()) == 1
    again = Consumer(consumer.ring, consumer.eventfd)
    rec = again.read()
    assert (rec.id, rec.attempt) == (1, 1)
    assert again.mark_delivery(rec) == 2
    assert again.read().id == 2


def test_handshake_parsing():
    specs, attempts = handshake.parse("fd:3,fd:4;/dev/shm/a,/dev/shm/b", "5,6;7,8", "4")
    assert specs == [("fd:3", "fd:4", 5, 6), ("/dev/shm/a", "/dev/shm/b", 7, 8)]
    assert attempts == 4
    assert handshake.parse("fd:3,fd:4", "5,6")[1] == 3
    for bad in [("", "1,2", None), ("fd:3", "1,2", None), ("fd:3,fd:4", "1,x", None), ("a,b;c,d", "1,2", None),
                ("a,b", "1,2", "0")]:
        try:
            handshake.parse(*bad)
            raise AssertionError(f"accepted {bad}")
        except handshake.HandshakeError:
            pass


def test_producer_attached_at_a_misaligned_head_stays_in_bounds():
    # A head cursor another process left misaligned (3 bytes before the end
    # of the data area): the producer moves up to the next record boundary
    # instead of writing a padding marker past the data area.
    from citadel_plugin.ring import OFF_COMMIT, OFF_HEAD

    ring = Ring.create(4096)
    ring._set_u64(OFF_HEAD, 4093)
    ring._set_u64(OFF_COMMIT, 4093)
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    producer = Producer(ring, efd)
    assert producer.head == 4096
    producer.send(1, b"hello", kind=KIND_REQUEST)
    assert producer.head == 4096 + record_len(5)


def test_stage_outputs_parsing():
    outs = handshake.parse_outputs("fd:11@12|/dev/shm/x.req@13;", 2)
    assert outs == [[("fd:11", 12), ("/dev/shm/x.req", 13)], []]
    for bad, pairs in [("fd:11@12", 2), ("fd:11;", 1), ("fd:11@x", 1)]:
        try:
            handshake.parse_outputs(bad, pairs)
        except handshake.HandshakeError:
            continue
        raise AssertionError(f"{bad!r} accepted")


def test_handled_records_are_counted_where_the_server_reads_them():
    from citadel_plugin import ring as r

    producer, consumer = _pair()
    consumer.record_handled(4, 4 * 100_000)  # 100 us each: bucket 1
    consumer.record_handled(1, 10)  # bucket 0
    ring = consumer.ring
    assert ring._u64(r.OFF_DELIVERED) == 5
    assert ring._u64(r.OFF_BUSY_NS) == 400_010
    assert ring._u64(r.OFF_LATENCY) == 1
    assert ring._u64(r.OFF_LATENCY + 8) == 4


def test_calls_open_in_open_rings_and_stay_there_until_they_end():
    from citadel_plugin.outputs import Outputs, continues_call
    from citadel_plugin.ring import OFF_CALLS, OFF_CLOSED

    pairs = [_pair() for _ in range(3)]
    outputs = Outputs([p for p, _ in pairs])
    closed = lambda n: pairs[n][0].ring._i.__setitem__(OFF_CLOSED // 4, 1)  # noqa: E731
    closed(2)  # the spare slot
    assert [outputs.route(i) for i in range(1, 5)] == [1, 0, 1, 0]
    closed(0)  # draining: its open calls stay, new ones go elsewhere
    assert outputs.route(2) == 0 and outputs.route(10) == 1
    assert pairs[0][0].ring._u64(OFF_CALLS) == 2  # calls 2 and 4 open in ring 0
    outputs.end(2)
    outputs.end(4)
    assert pairs[0][0].ring._u64(OFF_CALLS) == 0
    closed(1)
    assert outputs.route(11) is None  # every ring closed: wait
    assert continues_call(bytes([2, 1, 0])) and not continues_call(bytes([4, 1]))


def test_a_restarted_stage_sends_a_call_where_it_was_opened():
    from citadel_plugin.outputs import Outputs
    from citadel_plugin.ring import OFF_CALLS, OFF_CLOSED, OPEN_CALL_SLOTS, Producer

    pairs = [_pair() for _ in range(2)]
    outputs = Outputs([p for p, _ in pairs])
    assert outputs.route(3) == 1 and outputs.route(4) == 0
    outputs.end(4)
    # Killed here; ring 1 closes (an upgrade) before the restart.
    ring1 = pairs[1][0].ring
    ring1._i[OFF_CLOSED // 4] = 1
    ring1._set_u64(OFF_CALLS, 7)  # died between the slot and the count
    again = Outputs([Producer(p.ring, p.eventfd) for p, _ in pairs])
    assert ring1._u64(OFF_CALLS) == 1
    assert again.route(3) == 1  # call 3 goes on in the closed ring
    assert again.route(5) == 0
    again.end(3)
    assert ring1._u64(OFF_CALLS) == 0
    # A full table ends its oldest call to open a new one.
    ring1._i[OFF_CLOSED // 4] = 0
    one = Outputs([pairs[1][0]])
    for id in range(1, OPEN_CALL_SLOTS + 1):
        assert one.route(id) == 0
    assert one.route(100) == 0
    assert ring1._u64(OFF_CALLS) == OPEN_CALL_SLOTS
    assert 1 not in one.rings[0].open_call_ids() and 100 in one.rings[0].open_call_ids()
