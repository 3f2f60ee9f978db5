// tests/channel_process_test.cpp - channels between processes (label: integration).
//
//   - N producers x M consumers in separate processes, forked or exec'd
//     (channel_peer via posix_spawn, given the memfd number or the name):
//     MPMC 1x1, 2x2, 4x3 and SPSC 1x1 at capacities 1, 2 and 4096; every
//     message delivered exactly once and in order per producer;
//   - close() wakes receivers and senders sleeping in other processes;
//   - kill -9 of a sleeping or streaming peer: the survivor's timed calls
//     time out within a bound, what was published is intact, close() works;
//   - a memfd passed over a Unix socket (SCM_RIGHTS);
//   - a child that drops to another uid gets EACCES on a 0600 channel;
//   - open_or_create raced by several processes initialises exactly once.
//
// Synchronisation is through the channel, pipes, stats() and waitpid (via a
// pidfd with a timeout), never sleeps.
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <set>

#include "channel_test_util.hpp"
#include "futex.hpp"  // detail::barrier_fallback()

namespace ipc::test {
namespace {

const std::string peer_path = IPC_CHANNEL_PEER;
constexpr int peer_channel_fd = 100;  // where a spawned peer finds the channel's memfd
constexpr int peer_tally_fd = 101;

// Spawns channel_peer with `args`, naming the channel by its memfd (dup2'ed
// to peer_channel_fd) or, if `name` is given, by its name.
Process spawn_peer(const Channel& ch, std::vector<std::string> args, const Tally* tally = nullptr,
                   const ScopedName* name = nullptr) {
    std::vector<std::string> argv{peer_path};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::pair<int, int>> fds;
    if (name) {
        argv.push_back("name=" + name->str());
    } else {
        argv.push_back("fd=" + std::to_string(peer_channel_fd));
        fds.emplace_back(ch.fd(), peer_channel_fd);
    }
    if (tally) {
        argv.push_back("tally=" + std::to_string(peer_tally_fd));
        fds.emplace_back(tally->fd(), peer_tally_fd);
    }
    return Process::spawn(argv, fds);
}

// ---------------------------------------------------------------------------
// N producers x M consumers

enum class Launch { fork, spawn };

struct Workload {
    ChannelKind kind;
    std::uint32_t producers, consumers, capacity;
    Launch launch;
};

std::string workload_name(const ::testing::TestParamInfo<Workload>& i) {
    const Workload& w = i.param;
    return std::string(w.kind == ChannelKind::spsc ? "spsc" : "mpmc") + "_" + std::to_string(w.producers) + "x" +
           std::to_string(w.consumers) + "_cap" + std::to_string(w.capacity) +
           (w.launch == Launch::fork ? "_fork" : "_spawn");
}

void PrintTo(const Workload& w, std::ostream* os) { *os << workload_name({w, 0}); }

class ProducersConsumers : public ::testing::TestWithParam<Workload> {};

TEST_P(ProducersConsumers, EveryMessageOnceAndInOrderPerProducer) {
    const Workload w = GetParam();
    const std::uint64_t per = (w.capacity >= 64 ? 20000 : 3000) / w.producers;
    // Capacity 2 goes through a name; the others through the memfd.
    const bool by_name = w.capacity == 2;
    ScopedName name("pc");
    const ChannelOptions opts{.kind = w.kind, .capacity = w.capacity};
    Channel ch = by_name ? Channel::create(name, opts) : Channel::create_anonymous(opts);
    Tally tally = Tally::create(w.producers, per);

    // Producer p sends in batches of 5 if p is odd; consumer 1 receives in
    // batches of 4; producer 0 and consumer 0 never spin.
    auto batch_of_producer = [](std::uint32_t p) -> std::size_t { return p % 2 ? 5 : 1; };
    auto batch_of_consumer = [](std::uint32_t c) -> std::size_t { return c == 1 ? 4 : 1; };
    auto spin_of = [](std::uint32_t i) { return std::chrono::nanoseconds(i == 0 ? 0 : 20000); };

    std::vector<Process> consumers, producers;
    for (std::uint32_t c = 0; c < w.consumers; ++c) {
        if (w.launch == Launch::fork) {
            consumers.push_back(Process::fork([&] {
                Channel mine = by_name ? Channel::open(name) : Channel::from_fd(ch.fd());
                mine.set_spin(spin_of(c));
                return consume(mine, {.producers = w.producers, .per_producer = per, .batch = batch_of_consumer(c)},
                               tally);
            }));
        } else {
            consumers.push_back(spawn_peer(ch,
                                           {"consume", "producers=" + std::to_string(w.producers),
                                            "count=" + std::to_string(per),
                                            "batch=" + std::to_string(batch_of_consumer(c)),
                                            "spin=" + std::to_string(spin_of(c).count())},
                                           &tally, by_name ? &name : nullptr));
        }
    }
    for (std::uint32_t p = 0; p < w.producers; ++p) {
        if (w.launch == Launch::fork) {
            // Forked producers use the inherited handle itself (one per
            // process, so the SPSC contract holds: the parent never sends).
            producers.push_back(Process::fork([&] {
                ch.set_spin(spin_of(p));
                return produce(ch, {.id = p, .count = per, .batch = batch_of_producer(p)});
            }));
        } else {
            producers.push_back(spawn_peer(ch,
                                           {"produce", "id=" + std::to_string(p), "count=" + std::to_string(per),
                                            "batch=" + std::to_string(batch_of_producer(p)),
                                            "spin=" + std::to_string(spin_of(p).count())},
                                           nullptr, by_name ? &name : nullptr));
        }
    }
    for (std::uint32_t p = 0; p < w.producers; ++p) EXPECT_EQ(producers[p].wait_describe(), "exit 0") << "producer " << p;
    // Every producer is done: closing now lets the consumers drain and stop.
    EXPECT_TRUE(ch.close());
    for (std::uint32_t c = 0; c < w.consumers; ++c) EXPECT_EQ(consumers[c].wait_describe(), "exit 0") << "consumer " << c;
    EXPECT_EQ(tally.check(), "");
    const ChannelStats st = ch.stats();
    EXPECT_EQ(st.depth, 0u);
    EXPECT_EQ(st.sleeping_receivers, 0u);
    EXPECT_EQ(st.sleeping_senders, 0u);
}

std::vector<Workload> workloads() {
    std::vector<Workload> v;
    for (Launch l : {Launch::fork, Launch::spawn})
        for (std::uint32_t cap : {1u, 2u, 4096u}) {
            v.push_back({ChannelKind::spsc, 1, 1, cap, l});
            for (auto [p, c] : {std::pair{1u, 1u}, std::pair{2u, 2u}, std::pair{4u, 3u}})
                v.push_back({ChannelKind::mpmc, p, c, cap, l});
        }
    return v;
}

INSTANTIATE_TEST_SUITE_P(Matrix, ProducersConsumers, ::testing::ValuesIn(workloads()), workload_name);

// ---------------------------------------------------------------------------
// close() across processes

class CrossProcess : public ::testing::TestWithParam<ChannelKind> {
protected:
    Channel make(std::uint32_t capacity) { return Channel::create_anonymous({.kind = GetParam(), .capacity = capacity}); }
    unsigned side_processes(unsigned want) const { return GetParam() == ChannelKind::spsc ? 1 : want; }
};

std::string kind_name(const ::testing::TestParamInfo<ChannelKind>& i) {
    return i.param == ChannelKind::spsc ? "spsc" : "mpmc";
}

INSTANTIATE_TEST_SUITE_P(Kinds, CrossProcess, ::testing::Values(ChannelKind::spsc, ChannelKind::mpmc), kind_name);

TEST_P(CrossProcess, CloseWakesReceiversSleepingInOtherProcesses) {
    Channel ch = make(4);
    const unsigned n = side_processes(4);
    std::vector<Process> kids;
    for (unsigned i = 0; i < n; ++i) {
        if (i % 2 == 0) {
            kids.push_back(spawn_peer(ch, {"recv-block", "spin=0"}));
        } else {
            kids.push_back(Process::fork([&] {
                Message m;
                const Status s = ch.recv(m);
                return s == Status::closed ? exit_ok : status_exit(s, "recv");
            }));
        }
    }
    ASSERT_TRUE(eventually([&] { return ch.stats().sleeping_receivers == n; }))
        << ch.stats().sleeping_receivers << " of " << n << " receivers slept";
    EXPECT_TRUE(ch.close());
    for (unsigned i = 0; i < n; ++i) EXPECT_EQ(kids[i].wait_describe(10s), "exit 0") << "receiver " << i;
    EXPECT_EQ(ch.stats().sleeping_receivers, 0u);
}

TEST_P(CrossProcess, CloseWakesSendersSleepingInOtherProcesses) {
    Channel ch = make(2);
    const unsigned n = side_processes(3);
    std::vector<Process> kids;
    for (unsigned i = 0; i < n; ++i) kids.push_back(spawn_peer(ch, {"send-block", i % 2 ? "spin=0" : "spin=20000"}));
    ASSERT_TRUE(eventually([&] { return ch.stats().sleeping_senders == n; }))
        << ch.stats().sleeping_senders << " of " << n << " senders slept";
    EXPECT_EQ(ch.stats().depth, 2u);
    EXPECT_TRUE(ch.close());
    for (unsigned i = 0; i < n; ++i) EXPECT_EQ(kids[i].wait_describe(10s), "exit 0") << "sender " << i;
    Message m;
    EXPECT_EQ(ch.try_recv(m), Status::ok);
    EXPECT_EQ(ch.try_recv(m), Status::ok);
    EXPECT_EQ(ch.try_recv(m), Status::closed);
}

// ---------------------------------------------------------------------------
// kill -9

// A timed call on a channel whose peer is gone returns timed_out, not before
// its deadline and not long after.
template <class Call>
void expect_times_out(Call&& call, std::chrono::milliseconds timeout) {
    const auto start = Clock::now();
    EXPECT_EQ(call(timeout), Status::timed_out);
    const auto took = Clock::now() - start;
    EXPECT_GE(took, timeout);
    EXPECT_LT(took, timeout + 3s);
}

TEST_P(CrossProcess, KilledSleepingReceiverLeavesAUsableChannel) {
    Channel ch = make(4);
    Process victim = spawn_peer(ch, {"recv-block", "spin=0"});
    ASSERT_TRUE(eventually([&] { return ch.stats().sleeping_receivers == 1; }));
    victim.kill9();
    EXPECT_EQ(victim.wait_describe(), "signal 9");
    // Its announcement stays behind (docs/channel-protocol.md): wakers pay a
    // spurious FUTEX_WAKE, nothing more. (Without membarrier a sleeper wakes
    // every millisecond to re-check, so it may have been between two sleeps.)
    if (!detail::barrier_fallback()) {
        EXPECT_EQ(ch.stats().sleeping_receivers, 1u);
    }
    EXPECT_LE(ch.stats().sleeping_receivers, 1u);
    Message m;
    expect_times_out([&](auto t) { return ch.recv_for(m, t); }, 50ms);
    for (std::uint64_t s = 0; s < 4; ++s) ASSERT_EQ(ch.send_for(make_msg(0, s), 1s), Status::ok);
    expect_times_out([&](auto t) { return ch.send_for(make_msg(0, 4), t); }, 50ms);
    // A new receiver takes over and gets everything.
    Process heir = Process::fork([&] {
        Channel rx = Channel::from_fd(ch.fd());
        Message got;
        for (std::uint64_t s = 0; s < 4; ++s) {
            if (Status st = rx.recv_for(got, 10s); st != Status::ok) return status_exit(st, "heir recv");
            if (!same_bytes(got, make_msg(0, s))) return report(exit_order, "heir got seq %llu", (unsigned long long)seq_of(got));
        }
        return exit_ok;
    });
    EXPECT_EQ(heir.wait_describe(), "exit 0");
    EXPECT_TRUE(ch.close());
    EXPECT_EQ(ch.recv_for(m, 10s), Status::closed);
}

TEST_P(CrossProcess, KilledSleepingSenderLeavesAUsableChannel) {
    Channel ch = make(4);
    Process victim = spawn_peer(ch, {"send-block", "spin=0"});
    ASSERT_TRUE(eventually([&] { return ch.stats().sleeping_senders == 1; }));
    victim.kill9();
    EXPECT_EQ(victim.wait_describe(), "signal 9");
    if (!detail::barrier_fallback()) {
        EXPECT_EQ(ch.stats().sleeping_senders, 1u) << "the dead sender's announcement stays";
    }
    EXPECT_LE(ch.stats().sleeping_senders, 1u);
    Message m;
    for (int i = 0; i < 4; ++i) {
        ASSERT_EQ(ch.recv_for(m, 1s), Status::ok);
        EXPECT_TRUE(same_bytes(m, make_msg(0, 0)));
    }
    expect_times_out([&](auto t) { return ch.recv_for(m, t); }, 50ms);
    std::array<Message, 4> out;
    const auto start = Clock::now();
    EXPECT_EQ(ch.recv_batch_until(out, Clock::now() + 50ms).status, Status::timed_out);
    EXPECT_GE(Clock::now() - start, 50ms);
    EXPECT_TRUE(ch.close());
    EXPECT_EQ(ch.recv(m), Status::closed);
}

TEST_P(CrossProcess, KilledStreamingProducerLeavesAnIntactPrefix) {
    Channel ch = make(64);
    Process victim = spawn_peer(ch, {"stream", "id=7"});
    Message m;
    std::uint64_t next = 0;
    for (; next < 500; ++next) {
        ASSERT_EQ(ch.recv_for(m, 10s), Status::ok);
        ASSERT_TRUE(same_bytes(m, make_msg(7, next))) << "at " << next;
    }
    victim.kill9();
    EXPECT_EQ(victim.wait_describe(), "signal 9");
    // What it published before dying is there, in order and without gaps;
    // then the ring stays empty and timed receives time out.
    Status st;
    while ((st = ch.recv_for(m, 100ms)) == Status::ok) {
        ASSERT_TRUE(same_bytes(m, make_msg(7, next))) << "at " << next;
        ++next;
    }
    EXPECT_EQ(st, Status::timed_out);
    expect_times_out([&](auto t) { return ch.recv_for(m, t); }, 20ms);
    EXPECT_TRUE(ch.close());
    EXPECT_EQ(ch.recv_for(m, 10s), Status::closed);
}

TEST_P(CrossProcess, KilledStreamingConsumerLetsTheSenderTimeOut) {
    constexpr std::uint32_t cap = 16;
    Channel ch = make(cap);
    Tally tally = Tally::create(1, 1u << 20);
    Process victim = spawn_peer(ch, {"consume", "producers=1", "count=1048576"}, &tally);
    std::uint64_t sent = 0;
    for (; sent < 2000; ++sent) ASSERT_EQ(ch.send_for(make_msg(0, sent), 10s), Status::ok);
    victim.kill9();
    EXPECT_EQ(victim.wait_describe(), "signal 9");
    // The ring fills up within a capacity of sends, then sends time out.
    Status st = Status::ok;
    std::uint64_t extra = 0;
    for (; extra <= cap && (st = ch.send_for(make_msg(0, sent + extra), 30ms)) == Status::ok; ++extra) {
    }
    EXPECT_EQ(st, Status::timed_out);
    EXPECT_LE(extra, cap);
    expect_times_out([&](auto t) { return ch.send_for(make_msg(0, 0), t); }, 20ms);
    for (std::uint64_t s = 0; s < 1000; ++s) ASSERT_EQ(tally.count(0, s), 1u) << "delivered before the kill: " << s;
    EXPECT_TRUE(ch.close());
    EXPECT_EQ(ch.send(make_msg(0, 0)), Status::closed);
}

// ---------------------------------------------------------------------------
// Descriptor passing

TEST_P(CrossProcess, MemfdPassedOverAUnixSocketCarriesTheChannel) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    constexpr std::uint64_t n = 5000;
    Tally tally = Tally::create(1, n);
    // The child starts with no channel at all: it gets one over the socket.
    Process child = Process::fork([&] {
        ::close(sv[0]);
        const int fd = recv_fd(sv[1]);
        if (fd < 0) return report(exit_unexpected, "no descriptor received");
        Channel rx = Channel::from_fd(fd);
        ::close(fd);
        return consume(rx, {.producers = 1, .per_producer = n}, tally);
    });
    ::close(sv[1]);
    Channel ch = make(8);
    ASSERT_TRUE(send_fd(sv[0], ch.fd()));
    ::close(sv[0]);
    EXPECT_EQ(produce(ch, {.id = 0, .count = n}), exit_ok);
    EXPECT_TRUE(ch.close());
    EXPECT_EQ(child.wait_describe(), "exit 0");
    EXPECT_EQ(tally.check(), "");
}

// ---------------------------------------------------------------------------
// Permissions and open_or_create across processes

TEST(NamedChannelAccess, AnotherUidGetsEaccesOnA0600Channel) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop to another uid";
    constexpr uid_t nobody = 65534;
    ScopedName private_ch("priv"), readable("ro"), shared("rw");
    Channel p = Channel::create(private_ch, {.kind = ChannelKind::mpmc, .capacity = 4, .mode = 0600});
    Channel r = Channel::create(readable, {.kind = ChannelKind::mpmc, .capacity = 4, .mode = 0644});
    Channel s = Channel::create(shared, {.kind = ChannelKind::mpmc, .capacity = 4, .mode = 0666});
    ScopedName own("nobody");
    Process child = Process::fork([&]() -> int {
        if (::setgroups(0, nullptr) != 0 || ::setgid(nobody) != 0 || ::setuid(nobody) != 0)
            return report(exit_unexpected, "cannot drop to uid %u", nobody);
        int failures = 0;
        auto expect = [&](const std::string& got, const std::string& want, const char* what) {
            if (got != want) failures += report(1, "%s: got %s, want %s", what, got.c_str(), want.c_str());
        };
        const std::string eacces = err(std::errc::permission_denied);
        expect(thrown([&] { (void)Channel::open(private_ch); }), eacces, "open 0600");
        expect(thrown([&] { (void)Channel::open_or_create(private_ch); }), eacces, "open_or_create 0600");
        expect(thrown([&] { (void)Channel::open(readable); }), eacces, "open 0644 (needs write access)");
        // Only the owner (or root) may remove a name in the sticky /dev/shm.
        expect(thrown([&] { (void)Channel::remove(private_ch); }), eacces, "remove somebody else's channel");
        // 0666 is open to everybody.
        try {
            Channel mine = Channel::open(shared);
            if (mine.try_send(make_msg(nobody, 1)) != Status::ok) failures += report(1, "send on 0666 failed");
        } catch (const std::exception& e) {
            failures += report(1, "open 0666: %s", e.what());
        }
        // And the other uid can make its own channel, owned by it.
        try {
            Channel made = Channel::create(own, {.mode = 0600});
            struct stat st {};
            if (::stat(own.path().c_str(), &st) != 0 || st.st_uid != nobody)
                failures += report(1, "own channel not owned by uid %u", nobody);
        } catch (const std::exception& e) {
            failures += report(1, "create as uid %u: %s", nobody, e.what());
        }
        return failures == 0 ? exit_ok : exit_unexpected;
    });
    EXPECT_EQ(child.wait_describe(), "exit 0");
    EXPECT_TRUE(private_ch.exists()) << "the other uid could not remove it";
    Message m;
    ASSERT_EQ(s.try_recv(m), Status::ok) << "the other uid's message arrived";
    EXPECT_TRUE(same_bytes(m, make_msg(nobody, 1)));
    EXPECT_EQ(p.try_recv(m), Status::would_block);
}

TEST(NamedChannelRace, OpenOrCreateFromManyProcessesInitialisesOnce) {
    constexpr unsigned n = 6;
    for (int round = 0; round < 5; ++round) {
        ScopedName name("race");
        Pipe go;
        std::vector<Process> kids;
        std::set<std::uint32_t> pids;
        for (unsigned i = 0; i < n; ++i) {
            kids.push_back(Process::fork([&, i] {
                go.close_write();
                char c;
                // Wait for the start signal (EOF when the parent closes the pipe).
                while (::read(go.read_fd(), &c, 1) > 0) {
                }
                Channel ch = Channel::open_or_create(name, {.kind = ChannelKind::mpmc, .capacity = 64});
                const Status s = ch.send_for(make_msg(i, 0), 10s);
                return s == Status::ok ? exit_ok : status_exit(s, "send");
            }));
            pids.insert(static_cast<std::uint32_t>(kids.back().pid()));
        }
        go.close_read();
        go.close_write();  // all children start at once
        for (unsigned i = 0; i < n; ++i) EXPECT_EQ(kids[i].wait_describe(), "exit 0") << "child " << i;
        Channel ch = Channel::open(name);
        EXPECT_EQ(ch.kind(), ChannelKind::mpmc);
        std::set<std::uint32_t> ids;
        Message m;
        while (ch.try_recv(m) == Status::ok) {
            EXPECT_TRUE(well_formed(m));
            ids.insert(producer_of(m));
        }
        EXPECT_EQ(ids.size(), n) << "a message was lost: the segment was initialised twice (round " << round << ")";
        EXPECT_EQ(pids.count(ch.control()->header.creator_pid), 1u) << "one of the racers created it";
    }
}

}  // namespace
}  // namespace ipc::test
