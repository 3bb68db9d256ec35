#!/usr/bin/env python3
"""gen_ring_corpus.py - writes the seed corpus for fuzz_ring.c into corpus/ring/ (input format in fuzz_ring.c).

Run from anywhere: python3 tests/fuzz/gen_ring_corpus.py. The outputs are checked in as test data.
"""
import os
import struct

REC_PAD, REC_USER = 1, 16
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "ring")


def rec(rtype, payload):
    body = struct.pack("<II", len(payload), rtype) + payload
    return body + b"\0" * (-len(body) % 8)


def region(cap, start, records):
    """Data region of cap bytes with records laid out from offset start (wrapping)."""
    data = bytearray(cap)
    off = start
    for r in records:
        for i, b in enumerate(r):
            data[(off + i) % cap] = b
        off += len(r)
    return bytes(data), off - start


def seed(shift=0, damage=0, value=0, head=0, delta=0, wlen=40, data=b""):
    return struct.pack("<BBQQIH", shift, damage, value, head, delta, wlen) + data


def main():
    os.makedirs(OUT, exist_ok=True)
    cap = 4096
    few = [rec(REC_USER, bytes(range(n))) for n in (0, 1, 7, 8, 100, 200)]
    data_few, used_few = region(cap, 0, few)
    # a wrap: an empty record 32 bytes before the end, padding over the last 24 bytes,
    # then two records from offset 0
    near_end = cap - 32
    wrap = bytearray(cap)
    wrap[near_end:near_end + 8] = rec(REC_USER, b"")
    wrap[near_end + 8:near_end + 16] = struct.pack("<II", 16, REC_PAD)
    after, used_after = region(cap, 0, [rec(REC_USER, b"after wrap"), rec(REC_USER, b"z" * 60)])
    wrap[0:used_after] = after[0:used_after]
    wrap_delta = 32 + used_after
    big = rec(REC_USER, b"m" * (cap // 8))
    data_big, used_big = region(cap, 0, [big])
    seeds = {
        "valid_records": seed(head=0, delta=used_few, data=data_few),
        "valid_wrap_with_padding": seed(head=10 * cap + near_end, delta=wrap_delta, data=bytes(wrap)),
        "empty": seed(head=8 * 1000, delta=0, wlen=100, data=bytes(cap)),
        "max_record": seed(head=0, delta=used_big, wlen=512, data=data_big),
        "bigger_ring": seed(shift=2, head=0, delta=used_few, wlen=3000, data=data_few),
        "type_zero": seed(head=0, delta=16, data=struct.pack("<II", 8, 0) + b"\0" * 8),
        "length_over_max": seed(head=0, delta=64, data=struct.pack("<II", cap // 8 + 1, REC_USER)),
        "record_beyond_tail": seed(head=0, delta=16, data=rec(REC_USER, b"y" * 100)),
        "record_crossing_end": seed(head=cap - 16, delta=64,
                                    data=b"\0" * (cap - 16) + struct.pack("<II", 40, REC_USER)),
        "tail_beyond_capacity": seed(head=0, delta=3 * cap, data=data_few),
        "misaligned_head": seed(head=3, delta=40, data=data_few),
        "bad_magic": seed(damage=1, value=0x1234, delta=used_few, data=data_few),
        "bad_version": seed(damage=2, value=2, delta=used_few, data=data_few),
        "bad_capacity": seed(damage=4, value=cap + 8, delta=used_few, data=data_few),
        "not_ready": seed(damage=6, value=0, delta=used_few, data=data_few),
        "truncated_file": seed(damage=7, value=100, delta=used_few, data=data_few),
    }
    for name, blob in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
