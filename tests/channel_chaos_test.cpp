// tests/channel_chaos_test.cpp - an MPMC named channel under kill -9 chaos
// (label: chaos).
//
//   Soak         producer and consumer processes on one named MPMC channel;
//                the test kill -9s them at random moments and starts new
//                ones. Every message carries (producer incarnation, sequence)
//                and a pattern; consumers record what they receive in shared
//                memory. Checked: no message received twice, none invented
//                (an incarnation that never existed, a sequence its producer
//                never reached, a broken pattern), per-producer order within
//                one consumer, every timed call back within its deadline, and
//                no message missing beyond what the kills explain.
//   DeadClaimer  the state a producer killed between claiming an index and
//   DeadTaker    publishing it (or a consumer killed between taking an index
//                and handing its slot back) leaves, made by hand: the
//                channel wedges for everyone, and every timed call still
//                returns at its deadline.
//
// A wedge is a property of the ring, not a bug in the soak: Vyukov's queue
// hands each index to exactly one producer and one consumer and waits for
// them to finish it. docs/reliability.md describes what the soak then does.
//
// Flags (after the GoogleTest ones): --duration SECONDS (the soak, default
// 20), --kill-interval-ms MS (default 30). The long run:
//   channel_chaos_test --gtest_filter=ChannelChaos.Soak --duration 600
#include <gtest/gtest.h>

#include <bit>
#include <charconv>
#include <cstdlib>
#include <random>
#include <unordered_map>

#include "channel_test_util.hpp"

namespace ipc::test {
namespace {

double soak_seconds = 20;
std::uint32_t kill_interval_ms = 30;

constexpr std::uint32_t producers = 3, consumers = 3;
constexpr std::uint32_t capacity = 16;
constexpr auto send_timeout = 500ms, recv_timeout = 200ms;
// A timed call that returns later than its deadline plus this hung.
constexpr auto deadline_slack = 3s;
// No message received for this long while producers run: the ring is stuck.
constexpr auto stall_after = 3s;

// --- Shared bookkeeping (MAP_SHARED | MAP_ANONYMOUS, inherited over fork) -----------

// Each producer process is a new incarnation with its own id; it sends
// sequences 0 .. per_incarnation - 1 and then exits (a new one takes over).
constexpr std::uint32_t max_incarnations = 1u << 17;
constexpr std::uint64_t per_incarnation = 1u << 14;
constexpr std::size_t bitmap_words = per_incarnation / 64;

struct Incarnation {
    std::atomic<std::uint64_t> attempted;  // 1 + the last sequence handed to send_for
    std::atomic<std::uint64_t> confirmed;  // sequences whose send_for returned ok
};

struct Proc {  // one per process, reported by it
    std::atomic<std::int64_t> last_return_ns;  // CLOCK_MONOTONIC when its last call returned
    std::atomic<std::uint64_t> received;
    std::atomic<std::uint64_t> timeouts;
};

struct Books {
    std::atomic<std::uint32_t> stop_producers;
    std::atomic<std::uint32_t> incarnations;  // ids handed out so far
    std::atomic<std::uint64_t> duplicates;
    std::atomic<std::uint64_t> invented;
    std::atomic<std::uint64_t> malformed;
    std::atomic<std::uint64_t> out_of_order;
    std::atomic<std::uint64_t> overran;  // timed calls that returned past deadline + slack
    std::atomic<std::uint64_t> other_status;
    std::atomic<std::uint64_t> worst_overrun_ns;
    Proc procs[producers + consumers];
    Incarnation inc[max_incarnations];
    // Then max_incarnations bitmaps of per_incarnation bits: received.
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "shared between processes");
static_assert(std::is_standard_layout_v<Books>, "shared memory holds standard-layout data only");

constexpr std::size_t books_bytes = sizeof(Books) + std::size_t{max_incarnations} * bitmap_words * 8;

std::atomic<std::uint64_t>* received_bits(Books* b, std::uint32_t inc) {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(reinterpret_cast<char*>(b) + sizeof(Books)) +
           std::size_t{inc} * bitmap_words;
}

std::int64_t mono_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// Records how long a timed call took against its timeout.
void timed(Books* b, Proc& me, std::int64_t started, std::chrono::nanoseconds timeout) {
    const std::int64_t now = mono_ns();
    me.last_return_ns.store(now, std::memory_order_relaxed);
    const std::int64_t over = now - started - timeout.count();
    if (over > std::chrono::nanoseconds(deadline_slack).count()) b->overran.fetch_add(1);
    std::uint64_t worst = b->worst_overrun_ns.load(std::memory_order_relaxed);
    while (over > 0 && static_cast<std::uint64_t>(over) > worst &&
           !b->worst_overrun_ns.compare_exchange_weak(worst, static_cast<std::uint64_t>(over))) {
    }
}

int producer_main(const std::string& name, Books* b, std::uint32_t slot, std::uint32_t id) {
    Channel ch = Channel::open(name);
    Proc& me = b->procs[slot];
    Incarnation& inc = b->inc[id];
    for (std::uint64_t s = 0; s < per_incarnation;) {
        if (b->stop_producers.load(std::memory_order_relaxed)) return exit_ok;
        // Relaxed: the send's release (R4) publishes it to the consumer that
        // checks a received sequence against it.
        inc.attempted.store(s + 1, std::memory_order_relaxed);
        const std::int64_t t0 = mono_ns();
        const Status st = ch.send_for(make_msg(id, s), send_timeout);
        timed(b, me, t0, send_timeout);
        if (st == Status::ok) {
            inc.confirmed.store(++s, std::memory_order_relaxed);
        } else if (st == Status::timed_out) {
            me.timeouts.fetch_add(1, std::memory_order_relaxed);  // not sent: try the same one again
        } else {
            b->other_status.fetch_add(1);
            return status_exit(st, "producer send_for");
        }
    }
    return exit_ok;
}

int consumer_main(const std::string& name, Books* b, std::uint32_t slot) {
    Channel ch = Channel::open(name);
    Proc& me = b->procs[slot];
    std::unordered_map<std::uint32_t, std::uint64_t> next;  // per incarnation: next sequence we may see
    Message m;
    for (;;) {
        const std::int64_t t0 = mono_ns();
        const Status st = ch.recv_for(m, recv_timeout);
        timed(b, me, t0, recv_timeout);
        if (st == Status::closed) return exit_ok;
        if (st == Status::timed_out) {
            me.timeouts.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        if (st != Status::ok) {
            b->other_status.fetch_add(1);
            return status_exit(st, "consumer recv_for");
        }
        if (!well_formed(m)) {
            b->malformed.fetch_add(1);
            continue;
        }
        const std::uint32_t id = producer_of(m);
        const std::uint64_t s = seq_of(m);
        if (id >= b->incarnations.load() || s >= per_incarnation ||
            s >= b->inc[id].attempted.load(std::memory_order_relaxed)) {
            b->invented.fetch_add(1);
            continue;
        }
        auto [it, fresh] = next.try_emplace(id, 0);
        if (s < it->second) b->out_of_order.fetch_add(1);
        it->second = s + 1;
        const std::uint64_t bit = std::uint64_t{1} << (s % 64);
        if (received_bits(b, id)[s / 64].fetch_or(bit) & bit) b->duplicates.fetch_add(1);
        me.received.fetch_add(1, std::memory_order_relaxed);
    }
}

// What holds the ring still, read from the segment: "" if nothing explains it.
std::string explain_stall(const Channel& ch) {
    const auto& ctl = *ch.control();
    const std::uint64_t slot_count = ctl.header.slot_count;
    const unsigned shift = static_cast<unsigned>(std::countr_zero(slot_count));
    const std::uint64_t h = ctl.head.value.load(), t = ctl.tail.value.load();
    const shm::MpmcSlot* slots = mpmc_slots(ch);
    // At head: index claimed by a producer (tail passed it), never published.
    if (t > h && slots[h & (slot_count - 1)].seq.load() == 2 * (h >> shift))
        return "index " + std::to_string(h) + " claimed by a producer and never published (head " +
               std::to_string(h) + ", tail " + std::to_string(t) + ")";
    // At tail: the previous lap's message taken by a consumer whose turn
    // never came back; the producers of this lap wait for it.
    if (t >= slot_count && slots[t & (slot_count - 1)].seq.load() == 2 * (t >> shift) - 1)
        return "index " + std::to_string(t - slot_count) + " taken by a consumer and never handed back (head " +
               std::to_string(h) + ", tail " + std::to_string(t) + ")";
    return "";
}

struct Running {
    Process proc;
    bool producer;
};

TEST(ChannelChaos, Soak) {
    void* mem = ::mmap(nullptr, books_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ASSERT_NE(mem, MAP_FAILED);
    Books* b = new (mem) Books{};
    struct Unmap {
        void* p;
        ~Unmap() { ::munmap(p, books_bytes); }
    } unmap{mem};

    std::mt19937_64 rng(std::random_device{}());
    std::uint64_t producer_kills = 0, consumer_kills = 0, generations = 1, stranded = 0, finished = 0;
    std::vector<std::string> wedges;
    auto name = std::make_unique<ScopedName>("chaos");
    auto ch = std::make_unique<Channel>(
        Channel::create(*name, {.kind = ChannelKind::mpmc, .capacity = capacity, .mode = 0600}));
    std::vector<std::optional<Running>> procs(producers + consumers);
    auto start = [&](std::uint32_t slot) {
        b->procs[slot].last_return_ns.store(mono_ns());
        const std::string n = name->str();
        if (slot < producers) {
            const std::uint32_t id = b->incarnations.load();
            if (id >= max_incarnations) return false;
            b->incarnations.store(id + 1);
            procs[slot].emplace(Running{Process::fork([=] { return producer_main(n, b, slot, id); }), true});
        } else {
            procs[slot].emplace(Running{Process::fork([=] { return consumer_main(n, b, slot); }), false});
        }
        return true;
    };
    auto received_total = [&] {
        std::uint64_t r = 0;
        for (const Proc& p : b->procs) r += p.received.load();
        return r;
    };
    for (std::uint32_t i = 0; i < producers + consumers; ++i) ASSERT_TRUE(start(i));

    const auto t0 = Clock::now();
    const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(soak_seconds));
    std::uint64_t last_received = 0;
    auto last_progress = Clock::now();
    while (Clock::now() < end) {
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % (2000 * kill_interval_ms + 1)));
        // Producers that finished their sequences make way for new ones;
        // anything else that ended by itself is a failure it reported.
        for (std::uint32_t i = 0; i < producers + consumers; ++i) {
            const int pfd = static_cast<int>(::syscall(SYS_pidfd_open, procs[i]->proc.pid(), 0));
            pollfd p{pfd, POLLIN, 0};
            const bool ended = pfd >= 0 && ::poll(&p, 1, 0) == 1;
            if (pfd >= 0) ::close(pfd);
            if (!ended) continue;
            const auto st = procs[i]->proc.wait(1s);
            EXPECT_TRUE(st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0)
                << (i < producers ? "producer" : "consumer") << " ended by itself: " << (st ? describe(*st) : "?");
            if (i < producers) ++finished;
            ASSERT_TRUE(start(i)) << "out of incarnation ids";
        }
        // Every live process returns from its timed calls.
        for (std::uint32_t i = 0; i < producers + consumers; ++i) {
            const std::int64_t quiet = mono_ns() - b->procs[i].last_return_ns.load();
            EXPECT_LT(quiet, std::chrono::nanoseconds(send_timeout + deadline_slack).count())
                << (i < producers ? "producer" : "consumer") << " " << i << " hangs in a timed call";
        }
        // Kill one at random.
        const auto victim = static_cast<std::uint32_t>(rng() % (producers + consumers));
        procs[victim]->proc.kill9();
        (void)procs[victim]->proc.wait(10s);
        ++(victim < producers ? producer_kills : consumer_kills);
        ASSERT_TRUE(start(victim)) << "out of incarnation ids";

        // A ring that stopped moving must be explained by a death in the
        // middle of an index; then the channel is replaced by a new one.
        if (const std::uint64_t r = received_total(); r != last_received) {
            last_received = r;
            last_progress = Clock::now();
        } else if (Clock::now() - last_progress > stall_after) {
            const std::string why = explain_stall(*ch);
            ASSERT_FALSE(why.empty()) << "the ring stopped for " << stall_after.count()
                                      << " s with nothing to explain it: a lost wakeup?";
            wedges.push_back(why);
            const auto& ctl = *ch->control();
            stranded += ctl.tail.value.load() - ctl.head.value.load();
            for (auto& p : procs) p.reset();  // kill -9 and reap everyone on the old channel
            consumer_kills += consumers;
            name = std::make_unique<ScopedName>("chaos");
            *ch = Channel::create(*name, {.kind = ChannelKind::mpmc, .capacity = capacity, .mode = 0600});
            ++generations;
            for (std::uint32_t i = 0; i < producers + consumers; ++i) ASSERT_TRUE(start(i));
            last_progress = Clock::now();
        }
    }

    // Stop: producers first; then close, and the consumers drain until closed.
    b->stop_producers.store(1);
    for (std::uint32_t i = 0; i < producers; ++i)
        EXPECT_EQ(procs[i]->proc.wait_describe(std::chrono::duration_cast<std::chrono::milliseconds>(
                      send_timeout + deadline_slack + 1s)),
                  "exit 0")
            << "producer " << i;
    EXPECT_TRUE(ch->close());
    bool drained = true;
    for (std::uint32_t i = producers; i < producers + consumers; ++i) {
        auto st = procs[i]->proc.wait(5s);
        if (!st) {  // killed by wait(): the ring is wedged and never says closed
            drained = false;
        } else {
            EXPECT_EQ(describe(*st), "exit 0") << "consumer " << i;
        }
    }
    if (!drained) {
        const std::string why = explain_stall(*ch);
        EXPECT_FALSE(why.empty()) << "consumers did not drain a closed channel, with nothing to explain it";
        wedges.push_back(why + " (at the end)");
        const auto& ctl = *ch->control();
        stranded += ctl.tail.value.load() - ctl.head.value.load();
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();

    // Books: every confirmed send was received, except what the kills explain.
    std::uint64_t confirmed = 0, missing = 0;
    const std::uint32_t incs = b->incarnations.load();
    for (std::uint32_t id = 0; id < incs; ++id) {
        const std::uint64_t c = b->inc[id].confirmed.load();
        confirmed += c;
        const auto* bits = received_bits(b, id);
        std::uint64_t got = 0;
        for (std::uint64_t w = 0; w < (c + 63) / 64; ++w) {
            std::uint64_t word = bits[w].load();
            if ((w + 1) * 64 > c) word &= (std::uint64_t{1} << (c % 64)) - 1;
            got += static_cast<std::uint64_t>(std::popcount(word));
        }
        missing += c - got;
    }
    std::uint64_t received = received_total(), timeouts = 0;
    for (const Proc& p : b->procs) timeouts += p.timeouts.load();
    EXPECT_EQ(b->duplicates.load(), 0u) << "a message was received twice";
    EXPECT_EQ(b->invented.load(), 0u) << "a message nobody sent was received";
    EXPECT_EQ(b->malformed.load(), 0u) << "a message arrived torn";
    EXPECT_EQ(b->out_of_order.load(), 0u) << "a consumer saw one producer's messages out of order";
    EXPECT_EQ(b->overran.load(), 0u) << "a timed call returned more than " << deadline_slack.count()
                                     << " s past its deadline";
    EXPECT_EQ(b->other_status.load(), 0u);
    // A consumer killed between receiving and recording loses one message;
    // a wedged ring strands what it held.
    EXPECT_LE(missing, consumer_kills + stranded) << "messages lost beyond what the kills explain";
    EXPECT_GT(received, 0u);

    std::printf("channel chaos: %.1f s, %u producers + %u consumers on an MPMC channel of %u\n"
                "  kills: %llu producers, %llu consumers; %llu producers finished their %llu messages\n"
                "  messages: %llu confirmed sent, %llu received, %llu missing (bound %llu), %llu timed calls timed "
                "out\n"
                "  duplicates %llu, invented %llu, torn %llu, out of order %llu, worst lateness %.1f ms\n"
                "  channels: %llu (%zu wedged)\n",
                seconds, producers, consumers, capacity, static_cast<unsigned long long>(producer_kills),
                static_cast<unsigned long long>(consumer_kills), static_cast<unsigned long long>(finished),
                static_cast<unsigned long long>(per_incarnation), static_cast<unsigned long long>(confirmed),
                static_cast<unsigned long long>(received), static_cast<unsigned long long>(missing),
                static_cast<unsigned long long>(consumer_kills + stranded),
                static_cast<unsigned long long>(timeouts), static_cast<unsigned long long>(b->duplicates.load()),
                static_cast<unsigned long long>(b->invented.load()),
                static_cast<unsigned long long>(b->malformed.load()),
                static_cast<unsigned long long>(b->out_of_order.load()), b->worst_overrun_ns.load() / 1e6,
                static_cast<unsigned long long>(generations), wedges.size());
    for (const auto& w : wedges) std::printf("  wedge: %s\n", w.c_str());
    RecordProperty("received", std::to_string(received));
    RecordProperty("wedges", static_cast<int>(wedges.size()));
}

// ---------------------------------------------------------------------------
// What a death in the middle of an index leaves behind

// A timed call returns its status no earlier than its deadline and not
// much later.
template <class Call>
void expect_deadline(Call&& call, Status want, std::chrono::milliseconds timeout) {
    const auto t = Clock::now();
    EXPECT_EQ(call(timeout), want);
    const auto took = Clock::now() - t;
    EXPECT_GE(took, timeout);
    EXPECT_LT(took, timeout + deadline_slack);
}

// Claims the next index as mpmc_try_send() does (the tail CAS) and then
// stops, as a producer killed before it published the message.
std::uint64_t claim_and_die(Channel& ch) {
    return scribble(ch).tail.value.fetch_add(1);
}

TEST(ChannelChaos, DeadClaimerWedgesTheRingButDeadlinesHold) {
    ScopedName name("claimer");
    Channel ch = Channel::create(name, {.kind = ChannelKind::mpmc, .capacity = 8});
    Channel rx = Channel::open(name);
    ASSERT_EQ(ch.try_send(make_msg(0, 0)), Status::ok);
    const std::uint64_t dead = claim_and_die(ch);
    EXPECT_EQ(dead, 1u);
    // Producers after it still claim and publish, until the ring looks full...
    std::uint64_t sent = 1;
    while (ch.try_send(make_msg(0, sent)) == Status::ok) ++sent;
    EXPECT_EQ(sent, 7u) << "message 0, the dead claim and 6 more fill the 8 places";
    // ...but receivers get only what precedes the dead index.
    Message m;
    ASSERT_EQ(rx.try_recv(m), Status::ok);
    EXPECT_TRUE(same_bytes(m, make_msg(0, 0)));
    EXPECT_EQ(rx.try_recv(m), Status::would_block) << "index 1 was never published";
    EXPECT_EQ(ch.try_send(make_msg(0, 7)), Status::ok) << "the place message 0 left is taken once more";
    EXPECT_EQ(ch.try_send(make_msg(0, 8)), Status::would_block) << "the next is the dead claim's";
    EXPECT_EQ(explain_stall(ch), "index 1 claimed by a producer and never published (head 1, tail 9)");
    // Every timed call, in this process or another, returns at its deadline.
    expect_deadline([&](auto t) { return rx.recv_for(m, t); }, Status::timed_out, 100ms);
    expect_deadline([&](auto t) { return ch.send_for(make_msg(0, 99), t); }, Status::timed_out, 100ms);
    Process other = Process::fork([&] {
        Channel c = Channel::open(name);
        Message got;
        const auto t = Clock::now();
        const Status s = c.recv_for(got, 100ms);
        const bool in_time = Clock::now() - t < 100ms + deadline_slack;
        return s == Status::timed_out && in_time ? exit_ok : report(exit_unexpected, "recv_for: %s", to_string(s));
    });
    EXPECT_EQ(other.wait_describe(), "exit 0");
    // close() does not unstick it: senders see closed, receivers never see
    // the end (a claimed index is still "on its way"), only their deadlines.
    EXPECT_TRUE(ch.close());
    EXPECT_EQ(ch.try_send(make_msg(0, 100)), Status::closed);
    EXPECT_EQ(rx.try_recv(m), Status::would_block);
    expect_deadline([&](auto t) { return rx.recv_for(m, t); }, Status::timed_out, 100ms);
    // The way out is a new channel.
}

TEST(ChannelChaos, DeadTakerWedgesProducersALapLater) {
    ScopedName name("taker");
    Channel ch = Channel::create(name, {.kind = ChannelKind::mpmc, .capacity = 4});
    for (std::uint64_t s = 0; s < 4; ++s) ASSERT_EQ(ch.try_send(make_msg(0, s)), Status::ok);
    // A consumer takes index 0 (the head CAS) and dies before it copies the
    // message out and hands the slot back.
    EXPECT_EQ(scribble(ch).head.value.fetch_add(1), 0u);
    Message m;
    for (std::uint64_t s = 1; s < 4; ++s) {
        ASSERT_EQ(ch.try_recv(m), Status::ok);
        EXPECT_TRUE(same_bytes(m, make_msg(0, s)));
    }
    // Message 0 is gone with its taker: at most once, never twice.
    EXPECT_EQ(ch.try_recv(m), Status::would_block);
    // Slots 1..3 come round again; slot 0, where index 4 would go, never does.
    EXPECT_EQ(ch.try_send(make_msg(0, 4)), Status::would_block);
    EXPECT_EQ(explain_stall(ch), "index 0 taken by a consumer and never handed back (head 4, tail 4)");
    expect_deadline([&](auto t) { return ch.send_for(make_msg(0, 4), t); }, Status::timed_out, 100ms);
    expect_deadline([&](auto t) { return ch.recv_for(m, t); }, Status::timed_out, 100ms);
    // Here close() does end it: nothing was claimed beyond the head.
    EXPECT_TRUE(ch.close());
    EXPECT_EQ(ch.recv_for(m, 1s), Status::closed);
}

}  // namespace
}  // namespace ipc::test

// GoogleTest's flags, then ours.
int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        auto value = [&](auto& out) {
            const std::string_view v = i + 1 < argc ? std::string_view(argv[++i]) : std::string_view();
            auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
            if (v.empty() || ec != std::errc{} || p != v.data() + v.size() || !(out > 0)) {
                std::fprintf(stderr, "channel_chaos_test: %s needs a positive number\n", argv[i - 1]);
                std::exit(2);
            }
        };
        if (a == "--duration") {
            value(ipc::test::soak_seconds);
        } else if (a == "--kill-interval-ms") {
            value(ipc::test::kill_interval_ms);
        } else {
            std::fprintf(stderr,
                         "channel_chaos_test: unknown argument %s\n"
                         "usage: channel_chaos_test [gtest flags] [--duration SECONDS] [--kill-interval-ms MS]\n",
                         argv[i]);
            return 2;
        }
    }
    return RUN_ALL_TESTS();
}
