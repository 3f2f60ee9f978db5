// tests/channel_corruption_test.cpp - a peer that scribbles on the segment (unit).
//
// Out-of-range head/tail indices (SPSC and MPMC) and garbage MPMC turn numbers
// written straight into the shared control block must make every data-path
// call return Status::corrupted: no crash, no hang, no access outside the
// segment (the ASan build checks that), and close()/stats() still work.
#include <gtest/gtest.h>

#include <array>

#include "channel_test_util.hpp"

namespace ipc::test {
namespace {

constexpr std::uint64_t garbage = 0xDEADBEEFCAFEF00Dull;

// Every sending call on `tx` reports corruption. The unbounded call comes
// last, and only if the bounded ones behaved, so a regression fails here
// instead of hanging the test.
void expect_sends_corrupted(Channel& tx) {
    const Message m = make_msg(0, 0);
    const Status first = tx.try_send(m);
    EXPECT_EQ(first, Status::corrupted);
    const Status timed = tx.send_for(m, 100ms);
    EXPECT_EQ(timed, Status::corrupted);
    if (first != Status::corrupted || timed != Status::corrupted) return;
    EXPECT_EQ(tx.send(m), Status::corrupted) << "must not block on a broken ring";
    EXPECT_EQ(tx.send_for(m, 10s), Status::corrupted);
    EXPECT_EQ(tx.send_until(m, Clock::now() + 10s), Status::corrupted);
    const std::array<Message, 3> batch{m, m, m};
    BatchResult r = tx.try_send_batch(batch);
    EXPECT_EQ(r.status, Status::corrupted);
    EXPECT_EQ(r.count, 0u);
    r = tx.send_batch(batch);
    EXPECT_EQ(r.status, Status::corrupted);
    EXPECT_EQ(r.count, 0u);
}

// Every receiving call on `rx` reports corruption (unbounded calls last, as above).
void expect_recvs_corrupted(Channel& rx) {
    Message m;
    const Status first = rx.try_recv(m);
    EXPECT_EQ(first, Status::corrupted);
    const Status timed = rx.recv_for(m, 100ms);
    EXPECT_EQ(timed, Status::corrupted);
    if (first != Status::corrupted || timed != Status::corrupted) return;
    EXPECT_EQ(rx.recv(m), Status::corrupted) << "must not block on a broken ring";
    EXPECT_EQ(rx.recv_for(m, 10s), Status::corrupted);
    EXPECT_EQ(rx.recv_until(m, Clock::now() + 10s), Status::corrupted);
    std::array<Message, 3> out;
    BatchResult r = rx.try_recv_batch(out);
    EXPECT_EQ(r.status, Status::corrupted);
    EXPECT_EQ(r.count, 0u);
    r = rx.recv_batch(out);
    EXPECT_EQ(r.status, Status::corrupted);
    EXPECT_EQ(r.count, 0u);
    r = rx.recv_batch_until(out, Clock::now() + 10s);
    EXPECT_EQ(r.status, Status::corrupted);
    EXPECT_EQ(r.count, 0u);
}

// What must keep working on a broken ring: stats (depth within [0, capacity]) and close.
void expect_still_manageable(Channel& ch) {
    const ChannelStats st = ch.stats();
    EXPECT_LE(st.depth, st.capacity);
    EXPECT_FALSE(st.closed);
    EXPECT_TRUE(ch.close());
    EXPECT_TRUE(ch.stats().closed);
    EXPECT_EQ(ch.try_send(make_msg(0, 0)), Status::closed);
}

// Fresh handles on the same segment: their first call reads the shared indices.
Channel peer_of(const Channel& ch) { return Channel::from_fd(ch.fd()); }

void set_head(const Channel& ch, std::uint64_t v) { scribble(ch).head.value.store(v); }
void set_tail(const Channel& ch, std::uint64_t v) { scribble(ch).tail.value.store(v); }

// ---------------------------------------------------------------------------
// SPSC: tail - head must lie in [0, capacity]

TEST(SpscCorruption, HeadAheadOfTail) {
    Channel ch = Channel::create_anonymous({.kind = ChannelKind::spsc, .capacity = 4});
    ASSERT_EQ(ch.try_send(make_msg(0, 0)), Status::ok);
    ASSERT_EQ(ch.try_send(make_msg(0, 1)), Status::ok);
    set_head(ch, 3);
    Channel tx = peer_of(ch), rx = peer_of(ch);
    expect_sends_corrupted(tx);
    expect_recvs_corrupted(rx);
    expect_still_manageable(ch);
}

TEST(SpscCorruption, TailMoreThanACapacityAheadOfHead) {
    Channel ch = Channel::create_anonymous({.kind = ChannelKind::spsc, .capacity = 4});
    set_tail(ch, 5);
    Channel tx = peer_of(ch), rx = peer_of(ch);
    expect_sends_corrupted(tx);
    expect_recvs_corrupted(rx);
    EXPECT_EQ(ch.stats().depth, 4u) << "clamped to the capacity";
    expect_still_manageable(ch);
}

TEST(SpscCorruption, TailMoreThanACapacityAheadWithinTheSlotCount) {
    // Capacity 3 lives in 4 slots: 4 messages in flight is already too many.
    Channel ch = Channel::create_anonymous({.kind = ChannelKind::spsc, .capacity = 3});
    set_tail(ch, 4);
    Channel tx = peer_of(ch), rx = peer_of(ch);
    expect_sends_corrupted(tx);
    expect_recvs_corrupted(rx);
    EXPECT_EQ(ch.stats().depth, 3u) << "clamped to the capacity";
    expect_still_manageable(ch);
}

TEST(SpscCorruption, GarbageIndices) {
    // (~0, 0) would be legal: indices are free-running and wrap at 2^64.
    for (auto [h, t] : {std::pair{garbage, std::uint64_t{7}}, std::pair{std::uint64_t{0}, garbage},
                        std::pair{std::uint64_t{1}, std::uint64_t{0}}, std::pair{garbage, garbage + 100}}) {
        Channel ch = Channel::create_anonymous({.kind = ChannelKind::spsc, .capacity = 8});
        set_head(ch, h);
        set_tail(ch, t);
        Channel tx = peer_of(ch), rx = peer_of(ch);
        expect_sends_corrupted(tx);
        expect_recvs_corrupted(rx);
        expect_still_manageable(ch);
    }
}

TEST(SpscCorruption, AHandleInUseNoticesAtItsNextRefresh) {
    // The fast path trusts the handle's cached indices; the first look at
    // the segment (when the cache says full / empty) must catch the damage.
    Channel ch = Channel::create_anonymous({.kind = ChannelKind::spsc, .capacity = 4});
    Channel rx = peer_of(ch);
    ASSERT_EQ(ch.try_send(make_msg(0, 0)), Status::ok);
    Message m;
    ASSERT_EQ(rx.try_recv(m), Status::ok);
    set_head(ch, 100);
    Status s = Status::ok;
    int sends = 0;
    while (s == Status::ok && sends < 10) {
        s = ch.try_send(make_msg(0, 1));
        ++sends;
    }
    EXPECT_EQ(s, Status::corrupted);
    EXPECT_LE(sends, 5) << "at most a capacity of sends before the refresh";
    EXPECT_EQ(rx.try_recv(m), Status::corrupted);
    EXPECT_EQ(rx.recv(m), Status::corrupted);
}

// ---------------------------------------------------------------------------
// MPMC: turns must lie within one lap of the index

TEST(MpmcCorruption, GarbageTurnInTheNextSlot) {
    // (Turns 2^64-1 and 2^64-2 would read as "the previous lap is still
    // there": a ring that looks full or empty, not a broken one.)
    for (std::uint64_t turn : {std::uint64_t{12345}, garbage, std::uint64_t{3}, std::uint64_t{1} << 63}) {
        SCOPED_TRACE("turn " + std::to_string(turn));
        Channel ch = Channel::create_anonymous({.kind = ChannelKind::mpmc, .capacity = 4});
        mpmc_slots(ch)[0].seq.store(turn);
        Channel tx = peer_of(ch), rx = peer_of(ch);
        expect_sends_corrupted(tx);
        expect_recvs_corrupted(rx);
        expect_still_manageable(ch);
    }
}

TEST(MpmcCorruption, TurnStaleByTwoLaps) {
    Channel ch = Channel::create_anonymous({.kind = ChannelKind::mpmc, .capacity = 4});
    Message m;
    for (std::uint64_t s = 0; s < 8; ++s) {
        ASSERT_EQ(ch.try_send(make_msg(0, s)), Status::ok);
        ASSERT_EQ(ch.try_recv(m), Status::ok);
    }
    // Head and tail are at 8 (lap 2); slot 0 claims to be free for lap 0.
    mpmc_slots(ch)[0].seq.store(0);
    expect_sends_corrupted(ch);
    expect_recvs_corrupted(ch);
    expect_still_manageable(ch);
}

TEST(MpmcCorruption, TailFarAheadOfTheSlots) {
    Channel ch = Channel::create_anonymous({.kind = ChannelKind::mpmc, .capacity = 4});
    set_tail(ch, 1000);
    expect_sends_corrupted(ch);
    Message m;
    EXPECT_NE(ch.try_recv(m), Status::ok) << "nothing was ever published";
    expect_still_manageable(ch);
}

TEST(MpmcCorruption, HeadFarAheadOfTheSlots) {
    Channel ch = Channel::create_anonymous({.kind = ChannelKind::mpmc, .capacity = 4});
    set_head(ch, 1000);
    expect_recvs_corrupted(ch);
    expect_still_manageable(ch);
}

TEST(MpmcCorruption, HeadAheadOfTailWithACapacityBelowTheSlotCount) {
    // Capacity 3 in 4 slots: senders also check tail - head against the
    // capacity, and a head past the tail must read as corruption, not as a
    // ring that is full forever.
    for (std::uint64_t head : {std::uint64_t{1}, std::uint64_t{1000}, garbage}) {
        SCOPED_TRACE("head " + std::to_string(head));
        Channel ch = Channel::create_anonymous({.kind = ChannelKind::mpmc, .capacity = 3});
        set_head(ch, head);
        Channel tx = peer_of(ch);
        expect_sends_corrupted(tx);
        expect_still_manageable(ch);
    }
}

TEST(MpmcCorruption, GarbageIndicesAndTurnsEverywhere) {
    Channel ch = Channel::create_anonymous({.kind = ChannelKind::mpmc, .capacity = 8});
    set_head(ch, garbage);
    set_tail(ch, garbage ^ 0x5555);
    for (std::uint32_t i = 0; i < 8; ++i) mpmc_slots(ch)[i].seq.store(garbage * (i + 1));
    Channel tx = peer_of(ch), rx = peer_of(ch);
    expect_sends_corrupted(tx);
    expect_recvs_corrupted(rx);
    expect_still_manageable(ch);
}

TEST(MpmcCorruption, CorruptionIsReportedAfterCloseToo) {
    // A receiver draining a closed channel must not mistake a broken ring
    // for "closed and drained".
    Channel ch = Channel::create_anonymous({.kind = ChannelKind::mpmc, .capacity = 4});
    ASSERT_TRUE(ch.close());
    mpmc_slots(ch)[0].seq.store(garbage);
    Message m;
    EXPECT_EQ(ch.try_recv(m), Status::corrupted);
    EXPECT_EQ(ch.recv(m), Status::corrupted);
}

TEST(SpscCorruption, CorruptionIsReportedAfterCloseToo) {
    Channel ch = Channel::create_anonymous({.kind = ChannelKind::spsc, .capacity = 4});
    ASSERT_TRUE(ch.close());
    set_tail(ch, 9);
    Channel rx = peer_of(ch);
    Message m;
    EXPECT_EQ(rx.try_recv(m), Status::corrupted);
    EXPECT_EQ(rx.recv(m), Status::corrupted);
}

}  // namespace
}  // namespace ipc::test
