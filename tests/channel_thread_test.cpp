// tests/channel_thread_test.cpp - several threads on one channel (label: thread).
//
// Same process, several threads, both ring kinds; built to run under
// ThreadSanitizer. Handles share one mapping (Channel::open_in on the same
// Mapping), so TSan sees every access to the ring at one address.
//
//   - a sleeping receiver (sender) is woken by a send (receive);
//   - close() wakes every sleeper, whichever blocking call it sleeps in,
//     and each returns `closed`;
//   - streams of messages with both sides blocking (capacities 1, 2, 3, 5, 64,
//     spin on and off, one shared handle or two): all delivered, in order;
//   - MPMC with 3 producer and 3 consumer threads: exactly once, in order
//     per producer; send_batch / recv_batch across wrap-around;
//   - an event loop sleeping through prepare_recv_wait() on recv_futex();
//   - close racing with busy senders loses no message that was sent ok.
//
// Every blocking call is bounded (a *_for call, or a watchdog that closes the
// channel), so a lost wakeup fails a test instead of hanging it. Threads are
// std::jthread so that a failed ASSERT joins them rather than terminating.
#include <gtest/gtest.h>
#include <linux/futex.h>

#include <array>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "channel_test_util.hpp"

namespace ipc::test {
namespace {

// Closes `ch` if the test is still running after `limit`: every sleeper then
// returns `closed`, the test fails on that, and nothing hangs.
class Watchdog {
public:
    Watchdog(Channel& ch, std::chrono::seconds limit)
        : thread_([this, &ch, limit] {
              std::unique_lock lk(mu_);
              if (!cv_.wait_for(lk, limit, [this] { return done_; })) {
                  fired_ = true;
                  (void)ch.close();
              }
          }) {}
    ~Watchdog() { stop(); }
    // Stops the watchdog; true if it had fired.
    bool stop() {
        {
            std::lock_guard lk(mu_);
            done_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
        return fired_;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    bool fired_ = false;
    std::thread thread_;
};

class Threads : public ::testing::TestWithParam<ChannelKind> {
protected:
    Channel make(std::uint32_t capacity) { return Channel::create_anonymous({.kind = GetParam(), .capacity = capacity}); }
    // How many threads may use one side at once.
    unsigned side_threads(unsigned want) const { return GetParam() == ChannelKind::spsc ? 1 : want; }
};

std::string kind_name(const ::testing::TestParamInfo<ChannelKind>& i) {
    return i.param == ChannelKind::spsc ? "spsc" : "mpmc";
}

INSTANTIATE_TEST_SUITE_P(Kinds, Threads, ::testing::Values(ChannelKind::spsc, ChannelKind::mpmc), kind_name);

// ---------------------------------------------------------------------------
// One sleeper, one waker

TEST_P(Threads, SleepingReceiverIsWokenBySend) {
    for (auto spin : {std::chrono::nanoseconds(0), std::chrono::nanoseconds(20000)}) {
        Channel ch = make(4);
        Channel rx = Channel::open_in(ch.mapping(), 0);
        rx.set_spin(spin);
        Message got;
        Status st = Status::would_block;
        std::jthread t([&] { st = rx.recv_for(got, 20s); });
        ASSERT_TRUE(eventually([&] { return ch.stats().sleeping_receivers == 1; })) << "the receiver never slept";
        ASSERT_EQ(ch.try_send(make_msg(3, 42)), Status::ok);
        t.join();
        EXPECT_EQ(st, Status::ok);
        EXPECT_TRUE(same_bytes(got, make_msg(3, 42)));
        EXPECT_EQ(ch.stats().sleeping_receivers, 0u);
    }
}

TEST_P(Threads, SleepingSenderIsWokenByRecv) {
    for (auto spin : {std::chrono::nanoseconds(0), std::chrono::nanoseconds(20000)}) {
        Channel ch = make(2);
        Channel tx = Channel::open_in(ch.mapping(), 0);
        tx.set_spin(spin);
        ASSERT_EQ(tx.try_send(make_msg(0, 0)), Status::ok);
        ASSERT_EQ(tx.try_send(make_msg(0, 1)), Status::ok);
        Status st = Status::would_block;
        std::jthread t([&] { st = tx.send_for(make_msg(0, 2), 20s); });
        ASSERT_TRUE(eventually([&] { return ch.stats().sleeping_senders == 1; })) << "the sender never slept";
        Message m;
        ASSERT_EQ(ch.try_recv(m), Status::ok);
        EXPECT_EQ(seq_of(m), 0u);
        t.join();
        EXPECT_EQ(st, Status::ok);
        for (std::uint64_t s = 1; s <= 2; ++s) {
            ASSERT_EQ(ch.try_recv(m), Status::ok);
            EXPECT_EQ(seq_of(m), s);
        }
        EXPECT_EQ(ch.stats().sleeping_senders, 0u);
    }
}

TEST_P(Threads, SleepingBatchReceiverIsWokenBySendBatch) {
    Channel ch = make(8);
    Channel rx = Channel::open_in(ch.mapping(), 0);
    rx.set_spin(std::chrono::nanoseconds(0));
    std::array<Message, 8> out{};
    BatchResult r{Status::would_block, 0};
    std::jthread t([&] { r = rx.recv_batch_until(out, Clock::now() + 20s); });
    ASSERT_TRUE(eventually([&] { return ch.stats().sleeping_receivers == 1; }));
    std::vector<Message> batch;
    for (std::uint64_t s = 0; s < 5; ++s) batch.push_back(make_msg(0, s));
    const BatchResult sent = ch.try_send_batch(batch);
    ASSERT_EQ(sent.status, Status::ok);
    t.join();
    ASSERT_EQ(r.status, Status::ok);
    ASSERT_GE(r.count, 1u);
    ASSERT_LE(r.count, 5u);
    std::size_t have = r.count;
    while (have < 5) {
        Message m;
        ASSERT_EQ(ch.try_recv(m), Status::ok);
        out[have++] = m;
    }
    for (std::size_t i = 0; i < 5; ++i) EXPECT_TRUE(same_bytes(out[i], batch[i])) << i;
}

// ---------------------------------------------------------------------------
// close() wakes every sleeper

TEST_P(Threads, CloseWakesEverySleepingReceiverWithClosed) {
    Channel ch = make(4);
    Watchdog wd(ch, 30s);
    const unsigned n = side_threads(5);
    std::vector<Channel> handles;
    for (unsigned i = 0; i < n; ++i) handles.push_back(Channel::open_in(ch.mapping(), 0));
    std::vector<Status> got(n, Status::ok);
    std::vector<std::jthread> threads;
    for (unsigned i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
            Channel& h = handles[i];
            h.set_spin(std::chrono::nanoseconds(i % 2 ? 0 : 20000));
            Message m;
            std::array<Message, 4> out;
            switch (i % 5) {
                case 0: got[i] = h.recv(m); break;
                case 1: got[i] = h.recv_for(m, 25s); break;
                case 2: got[i] = h.recv_until(m, Clock::now() + 25s); break;
                case 3: got[i] = h.recv_batch(out).status; break;
                case 4: got[i] = h.recv_batch_until(out, Clock::now() + 25s).status; break;
            }
        });
    }
    ASSERT_TRUE(eventually([&] { return ch.stats().sleeping_receivers == n; }))
        << "only " << ch.stats().sleeping_receivers << " of " << n << " receivers slept";
    EXPECT_TRUE(ch.close());
    for (auto& t : threads) t.join();
    EXPECT_FALSE(wd.stop()) << "a sleeper was not woken by close()";
    for (unsigned i = 0; i < n; ++i) EXPECT_EQ(got[i], Status::closed) << "receiver " << i;
    EXPECT_EQ(ch.stats().sleeping_receivers, 0u);
}

TEST_P(Threads, CloseWakesEverySleepingSenderWithClosed) {
    Channel ch = make(2);
    Watchdog wd(ch, 30s);
    ASSERT_EQ(ch.try_send(make_msg(0, 0)), Status::ok);
    ASSERT_EQ(ch.try_send(make_msg(0, 1)), Status::ok);
    const unsigned n = side_threads(4);
    std::vector<Channel> handles;
    for (unsigned i = 0; i < n; ++i) handles.push_back(Channel::open_in(ch.mapping(), 0));
    std::vector<Status> got(n, Status::ok);
    std::vector<std::jthread> threads;
    for (unsigned i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
            Channel& h = handles[i];
            h.set_spin(std::chrono::nanoseconds(i % 2 ? 0 : 20000));
            const Message m = make_msg(1, i);
            const std::array<Message, 3> batch{m, m, m};
            switch (i % 4) {
                case 0: got[i] = h.send(m); break;
                case 1: got[i] = h.send_for(m, 25s); break;
                case 2: got[i] = h.send_until(m, Clock::now() + 25s); break;
                case 3: got[i] = h.send_batch(batch).status; break;
            }
        });
    }
    ASSERT_TRUE(eventually([&] { return ch.stats().sleeping_senders == n; }))
        << "only " << ch.stats().sleeping_senders << " of " << n << " senders slept";
    EXPECT_TRUE(ch.close());
    for (auto& t : threads) t.join();
    EXPECT_FALSE(wd.stop()) << "a sleeper was not woken by close()";
    for (unsigned i = 0; i < n; ++i) EXPECT_EQ(got[i], Status::closed) << "sender " << i;
    EXPECT_EQ(ch.stats().sleeping_senders, 0u);
    // The two buffered messages are still drained, then closed.
    Message m;
    EXPECT_EQ(ch.try_recv(m), Status::ok);
    EXPECT_EQ(ch.try_recv(m), Status::ok);
    EXPECT_EQ(ch.try_recv(m), Status::closed);
}

// ---------------------------------------------------------------------------
// Streams with both sides blocking

struct StreamCase {
    std::uint32_t capacity;
    std::uint64_t messages;
    bool shared_handle;  // one handle used by the sending and the receiving thread
    std::chrono::nanoseconds tx_spin, rx_spin;
    std::size_t tx_batch, rx_batch;
};

TEST_P(Threads, StreamsDeliverEverythingInOrder) {
    const std::vector<StreamCase> cases = {
        {1, 4000, false, 0ns, 0ns, 1, 1},          {1, 4000, true, 20us, 0ns, 1, 1},
        {2, 4000, false, 0ns, 20us, 1, 1},         {2, 4000, false, 0ns, 0ns, 3, 2},
        {3, 4000, false, 0ns, 0ns, 1, 1},          {5, 4000, false, 20us, 0ns, 2, 3},
        {64, 20000, true, 20us, 20us, 1, 1},       {64, 20000, false, 0ns, 0ns, 16, 8},
        {64, 20000, false, 20us, 20us, 100, 100},
    };
    for (const StreamCase& c : cases) {
        SCOPED_TRACE("capacity " + std::to_string(c.capacity) + (c.shared_handle ? ", shared handle" : "") +
                     ", batches " + std::to_string(c.tx_batch) + "/" + std::to_string(c.rx_batch) + ", spin " +
                     std::to_string(c.tx_spin.count()) + "/" + std::to_string(c.rx_spin.count()));
        Channel ch = make(c.capacity);
        Channel other = Channel::open_in(ch.mapping(), 0);
        Channel& tx = ch;
        Channel& rx = c.shared_handle ? ch : other;
        tx.set_spin(c.tx_spin);
        if (!c.shared_handle) rx.set_spin(c.rx_spin);
        Tally tally = Tally::create(1, c.messages);
        int tx_rc = -1, rx_rc = -1;
        std::jthread producer([&] {
            tx_rc = produce(tx, {.id = 0, .count = c.messages, .batch = c.tx_batch});
            (void)tx.close();
        });
        std::jthread consumer([&] {
            rx_rc = consume(rx, {.producers = 1, .per_producer = c.messages, .batch = c.rx_batch}, tally);
        });
        producer.join();
        consumer.join();
        EXPECT_EQ(tx_rc, exit_ok);
        EXPECT_EQ(rx_rc, exit_ok);
        EXPECT_EQ(tally.check(), "");
    }
}

TEST_P(Threads, SendBatchAndRecvBatchBlockAcrossWrapAround) {
    Channel ch = make(8);
    Watchdog wd(ch, 30s);
    Channel rx = Channel::open_in(ch.mapping(), 0);
    rx.set_spin(std::chrono::nanoseconds(0));
    ch.set_spin(std::chrono::nanoseconds(0));
    constexpr std::uint64_t n = 3000;
    std::vector<Message> all;
    for (std::uint64_t s = 0; s < n; ++s) all.push_back(make_msg(0, s));
    BatchResult sent{Status::would_block, 0};
    std::jthread producer([&] {
        // Odd-sized chunks larger than the ring: each call blocks and wraps.
        std::size_t done = 0;
        for (std::size_t chunk = 13; done < n; chunk = chunk % 29 + 13) {
            const std::size_t k = std::min<std::size_t>(chunk, n - done);
            const BatchResult r = ch.send_batch(std::span(all).subspan(done, k));
            done += r.count;
            if (r.status != Status::ok) break;
        }
        sent = {done == n ? Status::ok : Status::closed, done};
    });
    std::vector<Message> got;
    std::array<Message, 5> out;
    while (got.size() < n) {
        const BatchResult r = rx.recv_batch(out);
        if (r.status != Status::ok) {
            ADD_FAILURE() << "recv_batch: " << to_string(r.status) << " after " << got.size();
            break;
        }
        ASSERT_GE(r.count, 1u);
        got.insert(got.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(r.count));
    }
    producer.join();
    EXPECT_FALSE(wd.stop());
    EXPECT_EQ(sent.status, Status::ok);
    EXPECT_EQ(sent.count, n);
    ASSERT_EQ(got.size(), n);
    for (std::uint64_t s = 0; s < n; ++s) ASSERT_TRUE(same_bytes(got[s], all[s])) << "at " << s;
}

// MPMC only: an spsc channel allows one sender and one receiver at a time.
TEST(MpmcThreads, ManyProducersAndConsumersEachMessageOnceInOrder) {
    constexpr std::uint32_t producers = 3, consumers = 3;
    constexpr std::uint64_t per = 3000;
    for (std::uint32_t cap : {1u, 3u, 4u, 256u}) {
        SCOPED_TRACE("capacity " + std::to_string(cap));
        Channel ch = Channel::create_anonymous({.kind = ChannelKind::mpmc, .capacity = cap});
        Tally tally = Tally::create(producers, per);
        std::vector<Channel> handles;
        for (unsigned i = 0; i < producers + consumers; ++i) handles.push_back(Channel::open_in(ch.mapping(), 0));
        std::vector<int> rc(producers + consumers, -1);
        std::vector<std::uint64_t> received(consumers, 0);
        std::vector<std::jthread> prod, cons;
        for (std::uint32_t p = 0; p < producers; ++p)
            prod.emplace_back([&, p] {
                handles[p].set_spin(std::chrono::nanoseconds(p == 0 ? 0 : 20000));
                rc[p] = produce(handles[p], {.id = p, .count = per, .batch = p == 2 ? 7u : 1u});
            });
        for (std::uint32_t c = 0; c < consumers; ++c)
            cons.emplace_back([&, c] {
                Channel& h = handles[producers + c];
                h.set_spin(std::chrono::nanoseconds(c == 0 ? 0 : 20000));
                rc[producers + c] =
                    consume(h, {.producers = producers, .per_producer = per, .batch = c == 1 ? 4u : 1u}, tally,
                            &received[c]);
            });
        for (auto& t : prod) t.join();
        EXPECT_TRUE(ch.close());
        for (auto& t : cons) t.join();
        for (std::size_t i = 0; i < rc.size(); ++i) EXPECT_EQ(rc[i], exit_ok) << "thread " << i;
        EXPECT_EQ(tally.check(), "");
        std::uint64_t total = 0;
        for (auto r : received) total += r;
        EXPECT_EQ(total, producers * per);
    }
}

// ---------------------------------------------------------------------------
// An event loop that sleeps on the futex itself

// FUTEX_WAIT_BITSET on a shared futex with an absolute CLOCK_MONOTONIC deadline.
long futex_wait_until(std::atomic<std::uint32_t>& word, std::uint32_t expected, Deadline d) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d.time_since_epoch()).count();
    const timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    return ::syscall(SYS_futex, &word, FUTEX_WAIT_BITSET, expected, &ts, nullptr, FUTEX_BITSET_MATCH_ANY);
}

TEST_P(Threads, EventLoopSleepingOnRecvFutexMissesNothing) {
    for (std::uint32_t cap : {1u, 3u, 4u}) {
        SCOPED_TRACE("capacity " + std::to_string(cap));
        Channel ch = make(cap);
        Channel loop = Channel::open_in(ch.mapping(), 0);
        constexpr std::uint64_t n = 3000;
        int tx_rc = -1;
        std::jthread producer([&] {
            ch.set_spin(std::chrono::nanoseconds(0));
            tx_rc = produce(ch, {.id = 0, .count = n});
            (void)ch.close();
        });
        std::uint64_t next = 0;
        std::uint64_t sleeps = 0;
        bool stuck = false, closed = false;
        while (!closed && !stuck) {
            const Channel::WaitTicket t = loop.prepare_recv_wait();
            if (!t.ready) {
                ++sleeps;
                const long r = futex_wait_until(loop.recv_futex(), t.seq, Clock::now() + 10s);
                loop.finish_recv_wait();
                stuck = r != 0 && errno == ETIMEDOUT;
            }
            Message m;
            Status s;
            while ((s = loop.try_recv(m)) == Status::ok) {
                ASSERT_TRUE(same_bytes(m, make_msg(0, next))) << "expected " << next << ", got " << seq_of(m);
                ++next;
            }
            closed = s == Status::closed;
            ASSERT_TRUE(s == Status::closed || s == Status::would_block) << to_string(s);
        }
        producer.join();
        EXPECT_FALSE(stuck) << "the loop slept 10 s with a message pending: lost wakeup after " << next;
        EXPECT_EQ(tx_rc, exit_ok);
        EXPECT_EQ(next, n);
        EXPECT_EQ(ch.stats().sleeping_receivers, 0u) << "every announcement was withdrawn";
        RecordProperty("sleeps_cap" + std::to_string(cap), static_cast<int>(sleeps));
    }
}

// ---------------------------------------------------------------------------
// close() racing with busy senders

TEST_P(Threads, CloseRacingWithSendersLosesNoMessageThatWasSent) {
    const unsigned np = side_threads(3), nc = side_threads(2);
    constexpr std::uint64_t per = 200000;  // an upper bound: close comes much earlier
    Channel ch = make(16);
    Watchdog wd(ch, 30s);
    Tally tally = Tally::create(np, per);
    std::vector<Channel> handles;
    for (unsigned i = 0; i < np + nc; ++i) handles.push_back(Channel::open_in(ch.mapping(), 0));
    std::vector<std::uint64_t> sent(np, 0);
    std::atomic<std::uint64_t> received{0};
    std::vector<std::string> errors(np + nc);
    std::vector<std::jthread> threads;
    for (unsigned p = 0; p < np; ++p)
        threads.emplace_back([&, p] {
            for (std::uint64_t s = 0; s < per; ++s) {
                const Status st = handles[p].send_for(make_msg(p, s), 20s);
                if (st == Status::closed) return;
                if (st != Status::ok) {
                    errors[p] = std::string("send: ") + to_string(st);
                    return;
                }
                sent[p] = s + 1;
            }
        });
    // Receivers stop at `closed`; a message whose send raced with close may
    // be published after that, so the final drain below picks it up.
    std::vector<std::uint64_t> next(np * nc, 0);
    for (unsigned c = 0; c < nc; ++c)
        threads.emplace_back([&, c] {
            Message m;
            for (;;) {
                const Status st = handles[np + c].recv_for(m, 20s);
                if (st == Status::closed) return;
                if (st != Status::ok || !well_formed(m) || producer_of(m) >= np) {
                    errors[np + c] = std::string("recv: ") + to_string(st);
                    return;
                }
                std::uint64_t& nx = next[c * np + producer_of(m)];
                if (seq_of(m) < nx) {
                    errors[np + c] = "out of order";
                    return;
                }
                nx = seq_of(m) + 1;
                tally.record(producer_of(m), seq_of(m));
                received.fetch_add(1, std::memory_order_relaxed);
            }
        });
    ASSERT_TRUE(eventually([&] { return received.load(std::memory_order_relaxed) >= 2000; }));
    EXPECT_TRUE(ch.close());
    for (auto& t : threads) t.join();
    EXPECT_FALSE(wd.stop());
    for (std::size_t i = 0; i < errors.size(); ++i) EXPECT_EQ(errors[i], "") << "thread " << i;
    // Every thread is done: what is still buffered is drained now.
    Channel& drain = handles[np];
    Message m;
    Status st;
    while ((st = drain.try_recv(m)) == Status::ok) tally.record(producer_of(m), seq_of(m));
    EXPECT_EQ(st, Status::closed);
    for (unsigned p = 0; p < np; ++p) {
        EXPECT_LT(sent[p], per) << "close came before producer " << p << " finished";
        for (std::uint64_t s = 0; s < sent[p]; ++s)
            ASSERT_EQ(tally.count(p, s), 1u) << "producer " << p << " seq " << s << " (sent ok)";
        for (std::uint64_t s = sent[p]; s < std::min(per, sent[p] + 4); ++s)
            ASSERT_EQ(tally.count(p, s), 0u) << "producer " << p << " seq " << s << " (never sent ok)";
    }
}

}  // namespace
}  // namespace ipc::test
