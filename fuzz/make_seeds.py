#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/request and fuzz/corpus/segment.

The formats are described at the top of request_fuzz.cpp and
segment_fuzz.cpp; each seed here is a small, meaningful input (one per
operation, the usual contention patterns, valid SPSC and MPMC segments with
queued messages, an ipcd session segment). fuzz/corpus/config holds
hand-written TOML and is not generated. Run after changing a format:

    fuzz/make_seeds.py && git add fuzz/corpus
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# --- request_fuzz ------------------------------------------------------------

CREATE, OPEN, ACQUIRE, RELEASE, STAT, HOLDER, WAITER, LIST, REMOVE, CLOSE, STATUS = range(1, 12)
SESSIONS, RELEASE_SESSION, RELOAD, USAGE = range(12, 16)

ROOT = 0x00           # uid 0, gid 0
ALICE = 0x05          # uid 1000, gid 1000
BOB = 0x1E            # uid 1001, gid 2000, groups 1000
CAROL = 0x03 | 0x40   # uid 1002, gid 0, groups 2000

# name selectors (request_fuzz.cpp put_name)
A, B, C, DB, DOTTED, LONG, EMPTY, HIDDEN, SPACE, NUL_INSIDE = range(10)
# mode selectors: 0600 0660 0666 0644 0 0777 0606 01000
M600, M660, M666, M644, M0, M777, M606, MBAD = range(8)
# timeout selectors: 0 1 1000 1e6 1e9 forever INT64_MAX 2^63
T_TRY, T_1NS, T_1US, T_1MS, T_1S, T_FOREVER = range(6)
# time steps: 0 1 999 1000 1e6 1e9 60e9 INT64_MAX/4
STEP_1US, STEP_1MS, STEP_1S, STEP_1MIN = 3, 4, 5, 6


def script(peers, steps, small_limits=False):
    return bytes([1 if small_limits else 0, len(peers) - 1] + peers) + b"".join(steps)


def req(slot, op, a=0, b=0, c=0, ctl=0):
    return bytes([0, slot, op, ctl, a, b, c])


def create(slot, name, permits, mode=M666, persist=False):
    return req(slot, CREATE, name, permits, mode, 1 if persist else 0)


def acquire(slot, handle, count, timeout=T_TRY):
    return req(slot, ACQUIRE, handle, count, timeout)


def release(slot, handle, count):
    return req(slot, RELEASE, handle, count)


def add(peer):
    return bytes([5, peer])


def leave(slot):
    return bytes([6, slot])


def time(step):
    return bytes([7, step])


STOP = bytes([7, 0xFF])


def declare(*entries):
    """entries: (name, permits, owner byte, mode) selectors."""
    return bytes([8, len(entries)]) + b"".join(bytes(e) for e in entries)


def configure(limits=0, override=0, policy=1):
    return bytes([9, limits, override, policy])


def raw(slot, label, regs, flags=0, words=7):
    tag = (label << 32) | (flags << 4) | words
    return bytes([4, slot]) + struct.pack("<8Q", tag, *(regs + [0] * (7 - len(regs))))


def request_seeds():
    s = {}
    s["create-open-close"] = script([ROOT, ALICE], [
        create(0, A, 3), req(1, OPEN, A), req(1, OPEN, A), req(1, CLOSE, 1), req(1, CLOSE, 1), req(1, CLOSE, 1)])
    s["acquire-release"] = script([ALICE], [
        create(0, A, 3), acquire(0, 1, 2), acquire(0, 1, 1), release(0, 1, 3), release(0, 1, 1)])
    s["acquire-wait-grant"] = script([ALICE, BOB], [
        create(0, A, 2), req(1, OPEN, A), acquire(0, 1, 2), acquire(1, 1, 1, T_FOREVER),
        acquire(1, 1, 1, T_1MS), release(0, 1, 1), release(0, 1, 1)])
    s["acquire-timeout"] = script([ALICE, BOB], [
        create(0, A, 1), req(1, OPEN, A), acquire(0, 1, 1), acquire(1, 1, 1, T_1MS), time(STEP_1US),
        time(STEP_1MS), acquire(1, 1, 1, T_1S), time(STEP_1MIN)])
    s["fifo-head-blocks"] = script([ALICE, BOB, CAROL], [
        create(0, A, 3, M666), req(1, OPEN, A), req(2, OPEN, A), acquire(0, 1, 2), acquire(1, 1, 3, T_FOREVER),
        acquire(2, 1, 1, T_FOREVER), release(0, 1, 2), release(1, 1, 3), release(2, 1, 1)])
    s["remove-with-waiters"] = script([ALICE, BOB], [
        create(0, B, 1), req(1, OPEN, B), acquire(0, 1, 1), acquire(1, 1, 1, T_FOREVER), req(0, REMOVE, B),
        req(0, STAT, 1), req(0, CLOSE, 1), create(0, B, 2)])
    s["leave-while-holding"] = script([ALICE, BOB], [
        create(0, C, 2), req(1, OPEN, C), acquire(0, 1, 2), acquire(1, 1, 2, T_FOREVER), leave(0), add(ALICE),
        acquire(1, 1, 1)])
    s["stat-holder-waiter-list"] = script([ROOT, ALICE, BOB], [
        create(1, A, 4, M644), create(1, DB, 2, M660), req(2, OPEN, DB), acquire(1, 2, 1), acquire(2, 1, 2, T_1S),
        req(0, LIST, 0, 0), req(0, LIST, 0, 1), req(0, LIST, 0, 2), req(1, STAT, 2), req(1, HOLDER, 2, 0),
        req(1, HOLDER, 2, 1), req(1, WAITER, 2, 0), req(1, WAITER, 2, 1), req(0, STATUS)])
    s["permissions"] = script([ALICE, BOB, CAROL], [
        create(0, A, 2, M600), create(0, B, 2, M660), create(0, C, 2, M644), req(1, OPEN, A), req(1, OPEN, B),
        req(2, OPEN, C), acquire(2, 1, 1), req(2, STAT, 1), req(1, REMOVE, B), req(0, REMOVE, B)])
    s["bad-arguments"] = script([ALICE], [
        create(0, EMPTY, 1), create(0, HIDDEN, 1), create(0, SPACE, 1), create(0, NUL_INSIDE, 1), create(0, A, 0),
        create(0, A, 1, MBAD), create(0, A, 1), acquire(0, 1, 0), acquire(0, 1, 2), acquire(0, 7, 1),
        release(0, 1, 0), req(0, CLOSE, 0), req(0, 0), req(0, 0xF3)])
    s["limits"] = script([ALICE, ALICE, ALICE], [
        create(0, A, 1), create(0, B, 1), create(0, C, 1), req(0, OPEN, A), acquire(0, 1, 1), acquire(1, 1, 1),
        add(ALICE), create(1, DB, 1)], small_limits=True)
    s["stop"] = script([ALICE, BOB], [
        create(0, A, 1), req(1, OPEN, A), acquire(0, 1, 1), acquire(1, 1, 1, T_FOREVER), STOP,
        acquire(1, 1, 1, T_FOREVER), release(0, 1, 1)])
    s["persistent-tokens"] = script([ROOT], [
        create(0, DB, 2, M666, persist=True)] + [acquire(0, 1, 1), release(0, 1, 1)] * 4)
    s["admin-ops"] = script([ROOT, ALICE], [
        req(0, SESSIONS, 0, 0), req(0, SESSIONS, 0, 1), req(0, SESSIONS, 0, 2), req(0, USAGE, 0, 0),
        req(1, USAGE, 0, 2), req(1, RELEASE_SESSION, 0), req(0, RELEASE_SESSION, 1), req(0, RELEASE_SESSION, 0),
        req(1, RELOAD), req(0, RELOAD)])
    s["raw-messages"] = script([ROOT, ALICE], [
        raw(0, CREATE, [0, (0o666 << 32) | 2, ord("z")]), raw(1, OPEN, [0, 0, ord("z")]),
        raw(1, ACQUIRE, [0, 1, 1, 0]), raw(1, ACQUIRE, [0, 1, 1, 0], flags=0x800),
        raw(1, ACQUIRE, [0, 1, 1, 0], words=9), raw(0, 99, [0]), raw(1, RELEASE, [0, 1, 1])])
    s["declare-lower-raise"] = script([ROOT, ALICE, BOB], [
        declare((DB, 5, ALICE, M666)), req(1, OPEN, DB), req(2, OPEN, DB), acquire(1, 1, 4),
        acquire(2, 1, 3, T_FOREVER), acquire(2, 1, 1, T_FOREVER), declare((DB, 2, ALICE, M666)), release(1, 1, 1),
        release(1, 1, 3), declare((DB, 6, BOB, M660)), req(1, REMOVE, DB), declare(), req(1, REMOVE, DB)])
    s["declare-adopt-refuse"] = script([ALICE, BOB], [
        create(0, A, 3), acquire(0, 1, 2), declare((A, 3, BOB, M644), (A, 2, ALICE, M600), (HIDDEN, 1, 0, M600), (C, 1, 0, MBAD)),
        req(1, OPEN, A), req(1, STAT, 1), release(0, 1, 2), declare((A, 1, BOB, M666))])
    s["configure-limits-policy"] = script([ALICE, BOB], [
        configure(1, 0x04 | 1, 0x02), create(0, A, 1), create(1, B, 1), add(ALICE), add(ALICE), add(BOB),
        configure(2, 0x10 | 2, 0x04), create(1, C, 1), acquire(0, 1, 1), configure(0, 0, 1), create(1, C, 1)])
    return s


# --- segment_fuzz -------------------------------------------------------------

CHANNEL_MAGIC = 0x004E414843435049
SESSION_MAGIC = 0x0053534553435049
SPSC, MPMC = 1, 2


def slot_count(cap):
    n = 1
    while n < cap:
        n <<= 1
    return n


def message(label, *regs):
    return struct.pack("<8Q", (label << 32) | len(regs), *(list(regs) + [0] * (7 - len(regs))))


def channel(kind, cap, queued=0, head=0, closed=False):
    """A channel segment as init_control() writes it, with `queued`
    messages sent after `head` were sent and received."""
    n = slot_count(cap)
    slot_size = 64 if kind == SPSC else 128
    total = 320 + n * slot_size
    hdr = struct.pack("<QIIIIQQIIII", CHANNEL_MAGIC, 1, kind, cap, slot_size, 320, total, 4242, 1000,
                      1 if closed else 0, n)
    seg = bytearray(total)
    seg[0:len(hdr)] = hdr
    tail = head + queued
    struct.pack_into("<Q", seg, 64, tail)
    struct.pack_into("<Q", seg, 128, head)
    shift = n.bit_length() - 1
    if kind == MPMC:
        # Each slot's turn comes from the last index that used it: consumed
        # below head, a message from head to tail; unused slots stay 0.
        for idx in range(max(0, head - n), tail):
            lap = idx >> shift
            turn = 2 * lap + 2 if idx < head else 2 * lap + 1
            struct.pack_into("<Q", seg, 320 + (idx % n) * 128, turn)
    for idx in range(head, tail):
        off = 320 + (idx % n) * slot_size + (64 if kind == MPMC else 0)
        seg[off:off + 64] = message(7, idx, 0xABCD)
    return bytes(seg)


RECV, SEND, STATS, CLOSE_, RECV_BATCH, SEND_BATCH, READABLE, WAIT, POKE, POKE64, PAST, REOPEN = range(12)


def ops(*items):
    """items: (op, x, y, z) tuples; handle 1 by adding 0x10 to op."""
    out = bytearray(128)
    for i, it in enumerate(items[:32]):
        out[4 * i:4 * i + 4] = bytes(it)
    return bytes([len(items)]) + bytes(out)


USUAL = ops((RECV, 0, 0, 0), (SEND, 1, 2, 3), (STATS, 0, 0, 0), (RECV_BATCH, 7, 0, 0), (SEND_BATCH, 3, 1, 0),
            (READABLE, 0, 0, 0), (0x10 | RECV, 0, 0, 0), (0x10 | SEND, 5, 0, 0), (PAST, 1, 1, 0), (PAST, 0, 0, 0),
            (REOPEN, 0, 0, 0), (RECV, 0, 0, 0), (CLOSE_, 0, 0, 0), (RECV, 0, 0, 0), (RECV, 0, 0, 0))
SCRIBBLE = ops((POKE64, 8, 0, 4), (RECV, 0, 0, 0), (POKE64, 16, 0, 10), (SEND, 0, 0, 0), (POKE64, 40, 0, 1),
               (RECV, 0, 0, 0), (POKE, 48, 0, 1), (RECV_BATCH, 7, 0, 0), (POKE64, 16, 0, 11), (PAST, 1, 1, 0),
               (POKE, 64, 1, 0xFF), (0x10 | RECV, 0, 0, 0), (STATS, 0, 0, 0))


def segment_seeds():
    s = {}
    for name, flags, seg in [
        ("spsc-empty", 0, channel(SPSC, 4)),
        ("spsc-two-queued", 0, channel(SPSC, 4, queued=2)),
        ("spsc-full-cap3", 0, channel(SPSC, 3, queued=3, head=5)),
        ("spsc-closed-one-left", 0, channel(SPSC, 2, queued=1, closed=True)),
        ("spsc-cap1-memfd", 1, channel(SPSC, 1, queued=1, head=9)),
        ("mpmc-empty", 0, channel(MPMC, 4)),
        ("mpmc-two-queued", 0, channel(MPMC, 4, queued=2)),
        ("mpmc-wrapped-cap3", 0, channel(MPMC, 3, queued=2, head=6)),
        ("mpmc-closed-one-left", 0, channel(MPMC, 2, queued=1, closed=True)),
        ("mpmc-cap1-memfd", 1, channel(MPMC, 1, queued=1, head=3)),
        ("spsc-at-offset-128", 2 << 2, bytes(128) + channel(SPSC, 8, queued=3)),
    ]:
        s[name] = bytes([flags]) + USUAL + seg
        s[name + "-scribbled"] = bytes([flags]) + SCRIBBLE + seg
    # The ipcd session segment: header line, requests at 64, replies after it.
    req_ch = channel(SPSC, 64, queued=1)
    rep_ch = channel(SPSC, 64, queued=2, head=1)
    hdr = struct.pack("<QIIQQIIII", SESSION_MAGIC, 1, 7, 64, 64 + len(req_ch), 4242, 1000, 1000, 64)
    hdr += bytes(64 - len(hdr))
    sess = hdr + req_ch + rep_ch
    s["session"] = bytes([2]) + USUAL + sess
    s["session-memfd"] = bytes([3]) + SCRIBBLE + sess
    return s


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("request", request_seeds())
    write("segment", segment_seeds())
