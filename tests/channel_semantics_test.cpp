// tests/channel_semantics_test.cpp - Go channel semantics in one thread (unit).
//
// Every data-path call of both ring kinds (parameterised over spsc and mpmc):
// try_send / try_recv on full and empty rings, FIFO order across many
// wrap-arounds, blocking calls that can complete at once, *_for / *_until
// timeouts (timed_out, never before the deadline), close (one-way, double
// close false, sends fail, receivers drain then see closed), the batch calls,
// stats(), set_spin() and the external-wait interface (prepare_recv_wait).
// Calls that must wait for another thread are in channel_thread_test.
#include <gtest/gtest.h>

#include <array>

#include "channel_test_util.hpp"

namespace ipc::test {
namespace {

class Semantics : public ::testing::TestWithParam<ChannelKind> {
protected:
    Channel make(std::uint32_t capacity) { return Channel::create_anonymous({.kind = GetParam(), .capacity = capacity}); }

    static void fill(Channel& ch, std::uint64_t first, std::uint64_t n) {
        for (std::uint64_t s = first; s < first + n; ++s) ASSERT_EQ(ch.try_send(make_msg(0, s)), Status::ok) << s;
    }
    static void expect_recv(Channel& ch, std::uint64_t seq) {
        Message m;
        ASSERT_EQ(ch.try_recv(m), Status::ok) << "expected seq " << seq;
        EXPECT_TRUE(same_bytes(m, make_msg(0, seq))) << "got seq " << seq_of(m) << ", expected " << seq;
    }
    static std::vector<Message> msgs(std::uint64_t first, std::uint64_t n) {
        std::vector<Message> v;
        for (std::uint64_t s = first; s < first + n; ++s) v.push_back(make_msg(0, s));
        return v;
    }
};

std::string kind_name(const ::testing::TestParamInfo<ChannelKind>& i) {
    return i.param == ChannelKind::spsc ? "spsc" : "mpmc";
}

INSTANTIATE_TEST_SUITE_P(Kinds, Semantics, ::testing::Values(ChannelKind::spsc, ChannelKind::mpmc), kind_name);

// ---------------------------------------------------------------------------
// Non-blocking calls

TEST_P(Semantics, FreshChannelIsEmptyAndOpen) {
    Channel ch = make(16);
    EXPECT_TRUE(ch.valid());
    EXPECT_EQ(ch.kind(), GetParam());
    EXPECT_EQ(ch.capacity(), 16u);
    EXPECT_FALSE(ch.closed());
    const ChannelStats st = ch.stats();
    EXPECT_EQ(st.kind, GetParam());
    EXPECT_EQ(st.capacity, 16u);
    EXPECT_EQ(st.depth, 0u);
    EXPECT_EQ(st.sleeping_senders, 0u);
    EXPECT_EQ(st.sleeping_receivers, 0u);
    EXPECT_FALSE(st.closed);
    Message m;
    EXPECT_EQ(ch.try_recv(m), Status::would_block);
}

TEST_P(Semantics, TrySendFillsToCapacityThenWouldBlock) {
    // Capacities that are not powers of two buffer exactly that many too.
    for (std::uint32_t cap : {1u, 2u, 3u, 5u, 8u, 64u, 100u}) {
        SCOPED_TRACE("capacity " + std::to_string(cap));
        Channel ch = make(cap);
        for (std::uint64_t s = 0; s < cap; ++s) {
            ASSERT_EQ(ch.try_send(make_msg(0, s)), Status::ok);
            EXPECT_EQ(ch.stats().depth, s + 1);
        }
        EXPECT_EQ(ch.try_send(make_msg(0, cap)), Status::would_block);
        EXPECT_EQ(ch.try_send(make_msg(0, cap)), Status::would_block) << "still full";
        EXPECT_EQ(ch.stats().depth, cap);
        for (std::uint64_t s = 0; s < cap; ++s) expect_recv(ch, s);
        Message m;
        EXPECT_EQ(ch.try_recv(m), Status::would_block);
        EXPECT_EQ(ch.stats().depth, 0u);
        // Room again after draining.
        fill(ch, 100, cap);
        EXPECT_EQ(ch.try_send(make_msg(0, 0)), Status::would_block);
    }
}

TEST_P(Semantics, EveryByteOfAMessageIsCarried) {
    Channel ch = make(4);
    Message in;
    auto* bytes = reinterpret_cast<unsigned char*>(&in);
    for (std::size_t i = 0; i < sizeof in; ++i) bytes[i] = static_cast<unsigned char>(0xFF - 3 * i);
    ASSERT_FALSE(in.valid()) << "the channel carries the tag as it is; validating it is the protocol's job";
    ASSERT_EQ(ch.try_send(in), Status::ok);
    Message out = Message::make(1, {9, 9, 9});
    ASSERT_EQ(ch.try_recv(out), Status::ok);
    EXPECT_TRUE(same_bytes(in, out));
}

TEST_P(Semantics, FifoAcrossManyWrapArounds) {
    for (std::uint32_t cap : {1u, 2u, 3u, 4u, 5u, 8u}) {
        SCOPED_TRACE("capacity " + std::to_string(cap));
        Channel ch = make(cap);
        std::uint64_t sent = 0, got = 0;
        // Uneven bursts so head and tail meet every slot at every offset.
        for (int round = 0; round < 300; ++round) {
            const std::uint64_t burst = 1 + (round * 7) % cap;
            for (std::uint64_t i = 0; i < burst && sent - got < cap; ++i) ASSERT_EQ(ch.try_send(make_msg(0, sent++)), Status::ok);
            EXPECT_EQ(ch.stats().depth, sent - got);
            const std::uint64_t take = 1 + (round * 5) % (sent - got);
            for (std::uint64_t i = 0; i < take; ++i) expect_recv(ch, got++);
        }
        while (got < sent) expect_recv(ch, got++);
        EXPECT_GT(sent, 3u * cap);
    }
}

TEST_P(Semantics, SeparateHandlesShareOneRing) {
    Channel a = make(4);
    Channel same_map = Channel::open_in(a.mapping(), 0);
    Channel other_map = Channel::from_fd(a.fd());
    fill(a, 0, 2);
    expect_recv(same_map, 0);
    expect_recv(other_map, 1);
    ASSERT_EQ(other_map.try_send(make_msg(0, 2)), Status::ok);
    ASSERT_EQ(same_map.try_send(make_msg(0, 3)), Status::ok);
    EXPECT_EQ(a.stats().depth, 2u);
    expect_recv(a, 2);
    expect_recv(a, 3);
}

// ---------------------------------------------------------------------------
// Blocking calls that need not wait, and timeouts

TEST_P(Semantics, BlockingCallsCompleteAtOnceWhenTheyCan) {
    Channel ch = make(4);
    ASSERT_EQ(ch.send(make_msg(0, 0)), Status::ok);
    ASSERT_EQ(ch.send_for(make_msg(0, 1), 10s), Status::ok);
    ASSERT_EQ(ch.send_until(make_msg(0, 2), Clock::now() + 10s), Status::ok);
    Message m;
    ASSERT_EQ(ch.recv(m), Status::ok);
    EXPECT_EQ(seq_of(m), 0u);
    ASSERT_EQ(ch.recv_for(m, 10s), Status::ok);
    EXPECT_EQ(seq_of(m), 1u);
    ASSERT_EQ(ch.recv_until(m, Clock::now() + 10s), Status::ok);
    EXPECT_EQ(seq_of(m), 2u);
    EXPECT_TRUE(same_bytes(m, make_msg(0, 2)));
}

TEST_P(Semantics, RecvTimesOutOnAnEmptyRingNotBeforeTheDeadline) {
    for (auto spin : {std::chrono::nanoseconds(20000), std::chrono::nanoseconds(0)}) {
        SCOPED_TRACE("spin " + std::to_string(spin.count()) + " ns");
        Channel ch = make(2);
        ch.set_spin(spin);
        Message m;
        auto start = Clock::now();
        EXPECT_EQ(ch.recv_for(m, 30ms), Status::timed_out);
        auto took = Clock::now() - start;
        EXPECT_GE(took, 30ms);
        EXPECT_LT(took, 5s);
        const Deadline d = Clock::now() + 20ms;
        EXPECT_EQ(ch.recv_until(m, d), Status::timed_out);
        EXPECT_GE(Clock::now(), d);
        std::array<Message, 4> out;
        const Deadline d2 = Clock::now() + 20ms;
        const BatchResult r = ch.recv_batch_until(out, d2);
        EXPECT_EQ(r.status, Status::timed_out);
        EXPECT_EQ(r.count, 0u);
        EXPECT_GE(Clock::now(), d2);
        const ChannelStats st = ch.stats();
        EXPECT_EQ(st.sleeping_receivers, 0u) << "a timed-out receiver withdraws its announcement";
        EXPECT_EQ(st.depth, 0u);
    }
}

TEST_P(Semantics, SendTimesOutOnAFullRingNotBeforeTheDeadline) {
    for (auto spin : {std::chrono::nanoseconds(20000), std::chrono::nanoseconds(0)}) {
        SCOPED_TRACE("spin " + std::to_string(spin.count()) + " ns");
        Channel ch = make(2);
        ch.set_spin(spin);
        fill(ch, 0, 2);
        auto start = Clock::now();
        EXPECT_EQ(ch.send_for(make_msg(0, 2), 30ms), Status::timed_out);
        auto took = Clock::now() - start;
        EXPECT_GE(took, 30ms);
        EXPECT_LT(took, 5s);
        const Deadline d = Clock::now() + 20ms;
        EXPECT_EQ(ch.send_until(make_msg(0, 2), d), Status::timed_out);
        EXPECT_GE(Clock::now(), d);
        EXPECT_EQ(ch.stats().sleeping_senders, 0u);
        EXPECT_EQ(ch.stats().depth, 2u) << "nothing was sent";
        expect_recv(ch, 0);
        expect_recv(ch, 1);
    }
}

TEST_P(Semantics, DeadlinesInThePastStillTryOnce) {
    Channel ch = make(1);
    const Deadline past = Clock::now() - 1s;
    Message m;
    auto start = Clock::now();
    EXPECT_EQ(ch.recv_until(m, past), Status::timed_out);
    EXPECT_EQ(ch.recv_for(m, 0ms), Status::timed_out);
    EXPECT_EQ(ch.recv_for(m, -5ms), Status::timed_out);
    ASSERT_EQ(ch.send_until(make_msg(0, 0), past), Status::ok) << "room: sends without waiting";
    EXPECT_EQ(ch.send_until(make_msg(0, 1), past), Status::timed_out);
    EXPECT_EQ(ch.send_for(make_msg(0, 1), 0ms), Status::timed_out);
    EXPECT_LT(Clock::now() - start, 2s) << "none of these waited";
    ASSERT_EQ(ch.recv_until(m, past), Status::ok) << "a buffered message is taken without waiting";
    EXPECT_TRUE(same_bytes(m, make_msg(0, 0)));
}

TEST_P(Semantics, SetSpinClampsAndTimeoutsStillHold) {
    Channel ch = make(1);
    ch.set_spin(std::chrono::nanoseconds(-5));  // clamped to 0
    Message m;
    EXPECT_EQ(ch.recv_for(m, 5ms), Status::timed_out);
    ch.set_spin(std::chrono::hours(1));  // clamped to 1 s
    const Deadline d = Clock::now() + 20ms;
    EXPECT_EQ(ch.recv_until(m, d), Status::timed_out);
    EXPECT_GE(Clock::now(), d);
    ch.set_spin(std::chrono::microseconds(20));
    ASSERT_EQ(ch.send(make_msg(0, 0)), Status::ok);
    expect_recv(ch, 0);
}

// ---------------------------------------------------------------------------
// Close

TEST_P(Semantics, CloseIsOneWayAndOnlyTheFirstCallCloses) {
    Channel a = make(4);
    Channel b = Channel::open_in(a.mapping(), 0);
    EXPECT_FALSE(a.closed());
    EXPECT_TRUE(a.close());
    EXPECT_FALSE(a.close()) << "double close";
    EXPECT_FALSE(b.close()) << "already closed through another handle";
    EXPECT_TRUE(a.closed());
    EXPECT_TRUE(b.closed());
    EXPECT_TRUE(b.stats().closed);
    EXPECT_EQ(a.control()->header.closed.load(), 1u);
}

TEST_P(Semantics, EverySendFailsAfterClose) {
    Channel ch = make(4);
    fill(ch, 0, 1);
    ASSERT_TRUE(ch.close());
    EXPECT_EQ(ch.try_send(make_msg(0, 1)), Status::closed);
    EXPECT_EQ(ch.send(make_msg(0, 1)), Status::closed);
    EXPECT_EQ(ch.send_for(make_msg(0, 1), 10s), Status::closed);
    EXPECT_EQ(ch.send_until(make_msg(0, 1), Clock::now() + 10s), Status::closed);
    const auto batch = msgs(1, 2);
    BatchResult r = ch.try_send_batch(batch);
    EXPECT_EQ(r.status, Status::closed);
    EXPECT_EQ(r.count, 0u);
    r = ch.send_batch(batch);
    EXPECT_EQ(r.status, Status::closed);
    EXPECT_EQ(r.count, 0u);
    EXPECT_EQ(ch.stats().depth, 1u) << "nothing was added";
}

TEST_P(Semantics, SendsOnAFullRingFailAtOnceAfterClose) {
    Channel ch = make(2);
    fill(ch, 0, 2);
    ASSERT_TRUE(ch.close());
    auto start = Clock::now();
    EXPECT_EQ(ch.send(make_msg(0, 9)), Status::closed);
    EXPECT_EQ(ch.send_for(make_msg(0, 9), 10s), Status::closed);
    EXPECT_LT(Clock::now() - start, 5s);
}

TEST_P(Semantics, ReceiversDrainWhatWasBufferedThenSeeClosed) {
    for (std::uint32_t cap : {1u, 4u}) {
        SCOPED_TRACE("capacity " + std::to_string(cap));
        Channel ch = make(cap);
        Channel rx = Channel::from_fd(ch.fd());
        fill(ch, 0, cap);
        ASSERT_TRUE(ch.close());
        EXPECT_EQ(rx.stats().depth, cap);
        Message m;
        for (std::uint64_t s = 0; s < cap; ++s) {
            // Each receiving call takes one buffered message in turn.
            Status st = s % 3 == 0 ? rx.try_recv(m) : s % 3 == 1 ? rx.recv(m) : rx.recv_for(m, 10s);
            ASSERT_EQ(st, Status::ok) << s;
            EXPECT_TRUE(same_bytes(m, make_msg(0, s)));
        }
        auto start = Clock::now();
        EXPECT_EQ(rx.try_recv(m), Status::closed);
        EXPECT_EQ(rx.recv(m), Status::closed);
        EXPECT_EQ(rx.recv_for(m, 10s), Status::closed);
        EXPECT_EQ(rx.recv_until(m, Clock::now() + 10s), Status::closed);
        EXPECT_EQ(ch.try_recv(m), Status::closed) << "through the closing handle too";
        std::array<Message, 4> out;
        EXPECT_EQ(rx.try_recv_batch(out).status, Status::closed);
        EXPECT_EQ(rx.recv_batch(out).status, Status::closed);
        EXPECT_EQ(rx.recv_batch_until(out, Clock::now() + 10s).status, Status::closed);
        EXPECT_LT(Clock::now() - start, 5s) << "closed and drained: nothing waits";
    }
}

TEST_P(Semantics, BatchReceiversDrainAfterCloseToo) {
    Channel ch = make(8);
    fill(ch, 0, 6);
    ASSERT_TRUE(ch.close());
    std::array<Message, 4> out;
    BatchResult r = ch.try_recv_batch(out);
    ASSERT_EQ(r.status, Status::ok);
    ASSERT_EQ(r.count, 4u);
    for (std::size_t i = 0; i < 4; ++i) EXPECT_TRUE(same_bytes(out[i], make_msg(0, i)));
    r = ch.recv_batch(out);
    ASSERT_EQ(r.status, Status::ok);
    ASSERT_EQ(r.count, 2u);
    EXPECT_TRUE(same_bytes(out[0], make_msg(0, 4)));
    EXPECT_TRUE(same_bytes(out[1], make_msg(0, 5)));
    r = ch.recv_batch(out);
    EXPECT_EQ(r.status, Status::closed);
    EXPECT_EQ(r.count, 0u);
}

// ---------------------------------------------------------------------------
// Batches

TEST_P(Semantics, TrySendBatchSendsWhatFitsInOrder) {
    for (std::uint64_t cap : {8u, 5u}) {
        SCOPED_TRACE("capacity " + std::to_string(cap));
        Channel ch = make(static_cast<std::uint32_t>(cap));
        const auto batch = msgs(0, cap + 4);
        BatchResult r = ch.try_send_batch(batch);
        EXPECT_EQ(r.status, Status::would_block);
        EXPECT_EQ(r.count, cap);
        EXPECT_EQ(ch.stats().depth, cap);
        r = ch.try_send_batch(std::span(batch).subspan(cap));
        EXPECT_EQ(r.status, Status::would_block);
        EXPECT_EQ(r.count, 0u);
        r = ch.try_send_batch({});
        EXPECT_EQ(r.status, Status::ok);
        EXPECT_EQ(r.count, 0u);
        for (std::uint64_t s = 0; s < 3; ++s) expect_recv(ch, s);
        r = ch.try_send_batch(std::span(batch).subspan(cap));
        EXPECT_EQ(r.status, Status::would_block) << "3 free slots for 4 messages";
        EXPECT_EQ(r.count, 3u);
        for (std::uint64_t s = 3; s < cap + 3; ++s) expect_recv(ch, s);
        Message m;
        EXPECT_EQ(ch.try_recv(m), Status::would_block);
    }
}

TEST_P(Semantics, BatchesWrapAroundTheEndOfTheRing) {
    // Capacity 6 and 3 live in 8 and 4 slots: the batch copies wrap at the
    // slot count, not at the capacity.
    for (std::uint32_t cap : {8u, 6u, 3u}) {
        const std::uint32_t slots = shm::slot_count_for(cap);
        for (std::uint64_t offset = 1; offset < slots; ++offset) {
            SCOPED_TRACE("capacity " + std::to_string(cap) + ", head at " + std::to_string(offset));
            Channel ch = make(cap);
            for (std::uint64_t s = 0; s < offset; ++s) {
                ASSERT_EQ(ch.try_send(make_msg(0, s)), Status::ok);
                expect_recv(ch, s);
            }
            const auto batch = msgs(offset, cap);
            BatchResult r = ch.try_send_batch(batch);
            ASSERT_EQ(r.status, Status::ok);
            ASSERT_EQ(r.count, cap);
            EXPECT_EQ(ch.try_send(make_msg(0, 99)), Status::would_block);
            std::array<Message, 8> out{};
            r = ch.try_recv_batch(out);
            ASSERT_EQ(r.status, Status::ok);
            ASSERT_EQ(r.count, cap);
            for (std::size_t i = 0; i < cap; ++i) EXPECT_TRUE(same_bytes(out[i], batch[i])) << i;
        }
    }
}

TEST_P(Semantics, TryRecvBatchTakesAtMostWhatIsBuffered) {
    Channel ch = make(8);
    std::array<Message, 8> out{};
    BatchResult r = ch.try_recv_batch(out);
    EXPECT_EQ(r.status, Status::would_block);
    EXPECT_EQ(r.count, 0u);
    fill(ch, 0, 5);
    r = ch.try_recv_batch(std::span(out).first(3));
    ASSERT_EQ(r.status, Status::ok);
    ASSERT_EQ(r.count, 3u);
    r = ch.try_recv_batch(std::span<Message>{});
    EXPECT_EQ(r.status, Status::ok);
    EXPECT_EQ(r.count, 0u);
    r = ch.try_recv_batch(std::span(out).subspan(3));
    ASSERT_EQ(r.status, Status::ok);
    ASSERT_EQ(r.count, 2u);
    for (std::size_t i = 0; i < 5; ++i) EXPECT_TRUE(same_bytes(out[i], make_msg(0, i))) << i;
    r = ch.try_recv_batch(out);
    EXPECT_EQ(r.status, Status::would_block);
    EXPECT_EQ(r.count, 0u);
}

TEST_P(Semantics, RecvBatchReturnsWhatIsBufferedWithoutWaiting) {
    Channel ch = make(8);
    fill(ch, 0, 3);
    std::array<Message, 8> out{};
    BatchResult r = ch.recv_batch(out);
    ASSERT_EQ(r.status, Status::ok);
    ASSERT_EQ(r.count, 3u);
    fill(ch, 3, 2);
    r = ch.recv_batch_until(out, Clock::now() + 10s);
    ASSERT_EQ(r.status, Status::ok);
    ASSERT_EQ(r.count, 2u);
    EXPECT_TRUE(same_bytes(out[1], make_msg(0, 4)));
    r = ch.recv_batch(std::span<Message>{});
    EXPECT_EQ(r.status, Status::ok);
    EXPECT_EQ(r.count, 0u);
}

TEST_P(Semantics, SendBatchThatFitsDoesNotBlock) {
    Channel ch = make(8);
    const auto batch = msgs(0, 8);
    BatchResult r = ch.send_batch(batch);
    ASSERT_EQ(r.status, Status::ok);
    ASSERT_EQ(r.count, 8u);
    r = ch.send_batch({});
    EXPECT_EQ(r.status, Status::ok);
    EXPECT_EQ(r.count, 0u);
    for (std::uint64_t s = 0; s < 8; ++s) expect_recv(ch, s);
}

// ---------------------------------------------------------------------------
// The external-wait interface (what ipcd's event loop uses)

TEST_P(Semantics, PrepareRecvWaitAnnouncesOnlyWhenNothingIsReady) {
    Channel ch = make(4);
    Channel::WaitTicket t = ch.prepare_recv_wait();
    EXPECT_FALSE(t.ready);
    EXPECT_EQ(t.seq, ch.recv_futex().load());
    EXPECT_EQ(ch.stats().sleeping_receivers, 1u) << "announced: senders will wake it";
    // A send now sees the announcement and moves the futex word.
    ASSERT_EQ(ch.try_send(make_msg(0, 0)), Status::ok);
    EXPECT_NE(ch.recv_futex().load(), t.seq);
    ch.finish_recv_wait();
    EXPECT_EQ(ch.stats().sleeping_receivers, 0u);
    // Something buffered: ready, and nothing announced.
    t = ch.prepare_recv_wait();
    EXPECT_TRUE(t.ready);
    EXPECT_EQ(ch.stats().sleeping_receivers, 0u);
    expect_recv(ch, 0);
    // Closed: ready, so the loop calls try_recv and sees closed.
    ASSERT_TRUE(ch.close());
    t = ch.prepare_recv_wait();
    EXPECT_TRUE(t.ready);
    EXPECT_EQ(ch.stats().sleeping_receivers, 0u);
    Message m;
    EXPECT_EQ(ch.try_recv(m), Status::closed);
}

TEST_P(Semantics, PrepareRecvWaitSeesMessagesAfterTheRingHasWrapped) {
    for (std::uint32_t cap : {1u, 3u, 4u}) {
        SCOPED_TRACE("capacity " + std::to_string(cap));
        Channel ch = make(cap);
        for (std::uint64_t s = 0; s < 3 * cap + 1; ++s) {
            ASSERT_EQ(ch.try_send(make_msg(0, s)), Status::ok);
            Channel::WaitTicket t = ch.prepare_recv_wait();
            EXPECT_TRUE(t.ready) << "a message is buffered at index " << s;
            if (!t.ready) ch.finish_recv_wait();
            expect_recv(ch, s);
            t = ch.prepare_recv_wait();
            EXPECT_FALSE(t.ready) << "nothing is buffered after index " << s;
            if (!t.ready) ch.finish_recv_wait();
        }
        EXPECT_EQ(ch.stats().sleeping_receivers, 0u);
    }
}

}  // namespace
}  // namespace ipc::test
