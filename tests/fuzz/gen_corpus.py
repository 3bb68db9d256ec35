#!/usr/bin/env python3
"""gen_corpus.py - writes the seed corpora in tests/fuzz/corpus/<target>/ (committed as test
data; re-run after changing this script). Needs only the Python standard library."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def pack(v):
    """A small msgpack packer (enough for seeds): smallest encodings, like msgpack-c."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        return pack_str(v.encode())
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(v)


def pack_str(b):
    if len(b) < 32:
        return bytes([0xa0 | len(b)]) + b
    return b"\xd9" + bytes([len(b)]) + b


def u64(v):
    return b"\xcf" + struct.pack(">Q", v)


def record(seq, mid, mtype, channel, user, prio, ts, source, payload):
    """The canonical layout of common/codec.h (seq and timestamp always 0xcf + 8 bytes)."""
    out = b"\x8a" + pack("type") + pack("notification") + pack("seq") + u64(seq)
    out += pack("message_id") + pack(mid) + pack("message_type") + pack(mtype)
    out += pack("channel") + pack(channel) + pack("user_id") + pack(user)
    out += pack("priority") + pack(prio) + pack("timestamp") + u64(ts)
    out += pack("source") + pack(source) + pack("payload") + pack(payload)
    return out


TRADE = {"trade_id": "t1", "order_id": "o1", "exchange_order_id": "x1",
         "instrument_id": "IF2412", "direction": "buy", "offset": "open", "price": 3521.2,
         "volume": 2, "commission": 1.25, "fill_type": "full", "note": "extra"}
REJECT = {"order_id": "o2", "instrument_id": "IF2412", "reason": "no margin",
          "error_code": 31}
MARGIN = {"user_id": "u1", "current_margin": 10.5, "required_margin": 12, "deadline": 1700,
          "message": "top up"}

NOTIFS = [
    {"message_id": "m-1", "message_type": "trade_executed", "user_id": "u1", "priority": 1,
     "timestamp": 1764000000000000000, "source": "MatchingEngine", "payload": TRADE},
    {"message_type": "order_rejected", "user_id": "u2", "payload": REJECT},
    {"message_type": "margin_call", "user_id": "u1", "payload": MARGIN},
    {"message_type": "market_halt", "user_id": "*"},
    {"message_type": "system_notice", "user_id": "*",
     "payload": {"title": "t", "content": "caf\u00e9 \u20ac", "level": "info"}},
]


def codec_seeds():
    seeds = {"notif_%d" % i: pack(n) for i, n in enumerate(NOTIFS)}
    seeds["record"] = record(17, "m-1", "trade_executed", "trade", "u1", 1,
                             1764000000000000000, "MatchingEngine", TRADE)
    seeds["record_broadcast"] = record(3, "m-2", "market_halt", "system", "*", 3, 5, "", {})
    seeds["record_big_seq"] = record(0xf8ffffff00000011, "m-3", "order_expired", "trade", "u9",
                                     3, 2**64 - 1, "", {"k": -(2**63)})
    seeds["truncated"] = seeds["record"][:40]
    seeds["trailing"] = pack(NOTIFS[3]) + b"\x00"
    seeds["not_map"] = pack(["message_type", "market_halt"])
    seeds["deep"] = b"\x91" * 40 + b"\xc0"
    seeds["huge_header"] = b"\xdd\xff\xff\xff\xff"
    seeds["bad_kinds"] = pack({"message_type": "market_halt", "user_id": 5, "priority": "x"})
    seeds["kinds"] = pack({"message_type": "position_limit", "user_id": "u",
                           "payload": {"b": b"\x00\xff", "n": None, "f": 1.5, "i": -7,
                                       "a": [True, False], 1: "int key"}})
    seeds["nested_keys"] = b"\x81" * 30 + b"\x01" + b"\x02" * 30  # maps as keys of maps
    seeds["nul_key"] = pack({"message_type": "market_halt", "user_id": "u",
                             "payload": {"k\x00ey": 1}})
    return seeds


def scan_seeds():
    """The codec seeds plus what only the byte scanner can get wrong: batches, encodings the
    canonical writer shrinks, payload key lookups, and the bench's notification shape."""
    seeds = codec_seeds()
    bench = {"message_type": "system_notice", "user_id": "u7", "priority": 2,
             "source": "bench", "payload": {"title": "t", "level": "info", "content": "x" * 100}}
    seeds["bench"] = pack(bench)
    seeds["batch"] = bytes([0x90 | 4]) + b"".join(pack(n) for n in NOTIFS[:3]) + pack(bench)
    seeds["batch16"] = b"\xdc\x00\x02" + pack(NOTIFS[3]) + pack({"user_id": "u"})
    # non-minimal encodings: uint64 priority, int8 ints, str8 short strings, map16, array32,
    # ext8 of 1 byte (becomes fixext1), bin16, float32 signalling NaN
    seeds["wide"] = (b"\xde\x00\x04" + pack("message_type") + b"\xd9\x0bmarket_halt" +
                     pack("user_id") + b"\xda\x00\x01u" + pack("priority") + b"\xcf" +
                     b"\x00" * 7 + b"\x02" + pack("payload") + b"\xde\x00\x06" +
                     b"\xd9\x01a" + b"\xd0\x05" + b"\xa1b" + b"\xd1\xff\x00" +
                     b"\xa1c" + b"\xdd\x00\x00\x00\x02\xc7\x01\x05\x01\xc5\x00\x01\x00" +
                     b"\xa1d" + b"\xca\x7f\x80\x00\x01" + b"\xa1e" + b"\xd3" + b"\xff" * 8 +
                     b"\xa1f" + b"\xce\x00\x00\x00\x07")
    # required payload fields out of order, duplicated, and the kinds that fail them
    seeds["payload_out_of_order"] = pack({"message_type": "order_rejected", "user_id": "u",
                                 "payload": {"error_code": 1, "reason": "r", "order_id": "o",
                                             "instrument_id": "i"}})
    seeds["dup_payload"] = (b"\x83" + pack("message_type") + pack("system_notice") +
                             pack("user_id") + pack("u") + pack("payload") + b"\x85" +
                             pack("title") + pack("a") + pack("content") + pack("b") +
                             pack("title") + b"\x01" + pack("level") + pack("c") +
                             pack("content") + b"\xc0")
    seeds["many_payload"] = pack({"message_type": "system_notice", "user_id": "u",
                                  "payload": dict([("k%d" % i, i) for i in range(40)] +
                                                  [("level", "l"), ("content", "c"),
                                                   ("title", "t")])})
    seeds["unknown_field"] = pack({"message_type": "market_halt", "user_id": "u",
                                   "x" * 80: 1})
    seeds["bad_priority"] = pack({"message_type": "market_halt", "user_id": "u",
                                  "priority": -1})
    seeds["ignored_fields"] = pack({"type": 5, "channel": [1], "seq": "x",
                                    "message_type": "market_halt", "user_id": "u",
                                    "timestamp": 2**64 - 1})
    return seeds


def json_seeds():
    seeds = {"notif_%d" % i: json.dumps(n).encode() for i, n in enumerate(NOTIFS)}
    seeds["batch"] = json.dumps(NOTIFS[:3]).encode()
    seeds["trailing_comma"] = b'{"message_type":"market_halt",}'
    seeds["duplicate"] = b'{"user_id":"a","user_id":"b"}'
    seeds["bad_utf8"] = b'{"user_id":"\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80"}'
    seeds["controls"] = bytes(range(0, 32)) + b'"\\\x7f'
    seeds["escapes"] = b'{"a":"\\u00e9\\ud834\\udd1e\\n\\t\\"","b":[1e308,-0.0,12345678901234567]}'
    seeds["nul_escape"] = b'{"a":"x\\u0000y"}'
    return seeds


def clientop_seeds():
    ops = [
        {"op": "subscribe", "channels": ["trade", "risk"]},
        {"op": "unsubscribe", "channels": ["system"]},
        {"op": "resume", "since": 42},
        {"op": "ping"},
        {"op": "subscribe", "channels": ["bogus"]},
        {"op": "resume", "since": -1},
        {"op": "ack", "seq": 17},
        {"op": "acks", "on": True},
        {"op": "ack", "seq": 0},
    ]
    seeds = {}
    for i, op in enumerate(ops):
        seeds["json_%d" % i] = b"\x00" + json.dumps(op).encode()
        seeds["msgpack_%d" % i] = b"\x01" + pack(op)
    seeds["json_garbage"] = b"\x00{\"op\":"
    seeds["msgpack_truncated"] = b"\x01\x81\xa2op"
    return seeds


def results_seeds():
    """Broker responses for libherald's reader: first byte = room for results (max)."""
    ok = {"ok": True, "seq": 7, "message_id": "m-1"}
    dup = {"ok": True, "seq": 2**40, "duplicate": True}
    bad = {"ok": False, "error": "bad_value", "message": "priority must be 0..3"}
    seeds = {
        "single_ok": b"\x01" + pack(ok),
        "single_error": b"\x01" + pack(bad),
        "batch": b"\x08" + pack([ok, dup, bad]),
        "batch_room_2": b"\x02" + pack([ok, dup, bad]),
        "not_a_map": b"\x03" + pack([1, "x", None]),
        "signed_seq": b"\x01\x82\xa2ok\xc3\xa3seq\xd2\x00\x00\x01\x00",
        "negative_seq": b"\x01\x81\xa3seq\xd0\xff",
        "long_message": b"\x01" + pack({"ok": False, "error": "e" * 40, "message": "m" * 250}),
        "trailing": b"\x01" + pack(ok) + b"\x00",
        "truncated": b"\x04\xdd\xff\xff\xff\xff\x80",
    }
    return seeds


def main():
    for target, seeds in (("codec", codec_seeds()), ("scan", scan_seeds()), ("json", json_seeds()),
                          ("clientop", clientop_seeds()), ("results", results_seeds())):
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        # seeds are (re)written; other files are kept: json/c_* and the inputs fuzzing found
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
