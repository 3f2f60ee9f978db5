// ipcd against hostile clients: junk on the socket, corrupted and scribbled
// rings, garbage messages, floods, clients that never read their replies and
// connection churn. Each must cost the offender its session at most, and a
// well-behaved client next to it must keep working.
#include <linux/futex.h>
#include <sys/mman.h>

#include <atomic>
#include <climits>
#include <random>

#include "daemon_harness.hpp"

namespace {

using namespace ipcd_test;
using ipc::Message;
using ipc::Semaphore;
using ipc::Session;
using ipc::proto::Op;

// Wakes the daemon's doorbell wait on a raw session's request ring, as a
// sender does.
void ring_doorbell(RawSession& raw) {
    auto* ctl = raw.request_control();
    ctl->not_empty.seq.fetch_add(1, std::memory_order_release);
    ::syscall(SYS_futex, &ctl->not_empty.seq, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

class IpcdHostile : public ::testing::Test {
protected:
    Daemon d;
    std::shared_ptr<Session> good = d.connect();
    Semaphore sem = Semaphore::create(good, "victim", 1, 0666);

    // The well-behaved client still gets answers, and the daemon is alive.
    void expect_good_client_works() {
        EXPECT_FALSE(sem.acquire_for(1, 10s));
        EXPECT_FALSE(sem.release());
        EXPECT_GE(good->status().sessions, 1u);
    }
};

TEST_F(IpcdHostile, JunkBytesOnTheSocketDropOnlyThatSession) {
    auto raw = RawSession::connect(d.socket());
    auto h = raw->call(named_request(Op::open, "victim"));
    ASSERT_TRUE(h);
    Message acq = ipc::proto::request(Op::acquire, 0);
    acq.mr[1] = h->mr[2];
    acq.mr[2] = 1;
    ASSERT_EQ(result_of(*raw->call(acq)), Result::ok);
    ASSERT_EQ(::write(raw->sock, "junk", 4), 4);
    EXPECT_TRUE(raw->wait_hangup()) << "the daemon closes a session that writes to its socket";
    EXPECT_NE(d.log().find("wrote to its socket"), std::string::npos) << d.log();
    expect_good_client_works();  // and the permit the offender held came back
}

TEST_F(IpcdHostile, JunkBeforeTheHandshakeIsReadIsHarmless) {
    for (int i = 0; i < 20; ++i) {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", d.socket().c_str());
        ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        std::string junk(1000, static_cast<char>(i));
        (void)!::write(fd, junk.data(), junk.size());
        ::close(fd);
    }
    expect_good_client_works();
    EXPECT_TRUE(eventually([&] { return good->status().sessions == 1; }));
}

TEST_F(IpcdHostile, ConnectionChurnLeavesNoSessionsBehind) {
    for (int i = 0; i < 200; ++i) {
        if (i % 2) {
            auto raw = RawSession::connect(d.socket());  // handshake, then hang up
        } else {
            const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_un addr{};
            addr.sun_family = AF_UNIX;
            std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", d.socket().c_str());
            (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
            ::close(fd);  // before the Hello is read
        }
    }
    EXPECT_TRUE(eventually([&] { return good->status().sessions == 1; }));
    expect_good_client_works();
}

TEST_F(IpcdHostile, CorruptedRingIndicesDropOnlyThatSession) {
    auto raw = RawSession::connect(d.socket());
    auto h = raw->call(named_request(Op::open, "victim"));
    ASSERT_TRUE(h);
    Message acq = ipc::proto::request(Op::acquire, 0);
    acq.mr[1] = h->mr[2];
    acq.mr[2] = 1;
    ASSERT_EQ(result_of(*raw->call(acq)), Result::ok);
    auto* ctl = raw->request_control();
    ctl->tail.value.store(ctl->head.value.load() + 1000, std::memory_order_release);
    ring_doorbell(*raw);
    EXPECT_TRUE(raw->wait_hangup());
    EXPECT_NE(d.log().find("corrupted its request ring"), std::string::npos) << d.log();
    expect_good_client_works();
}

TEST_F(IpcdHostile, ScribblingOverTheWholeSegmentHurtsNobodyElse) {
    std::mt19937_64 rng(42);
    for (int round = 0; round < 10; ++round) {
        auto raw = RawSession::connect(d.socket());
        ASSERT_TRUE(raw->call(ipc::proto::request(Op::status, 0)));
        auto* bytes = static_cast<std::uint64_t*>(raw->mapping->data());
        for (std::size_t i = 0; i < raw->mapping->size() / 8; ++i) bytes[i] = rng();
        ring_doorbell(*raw);
        ASSERT_TRUE(raw->call(ipc::proto::request(Op::status, 0), 10ms) || true);  // whatever happens to it
        EXPECT_GE(good->status().sessions, 1u);
    }
    expect_good_client_works();
    EXPECT_TRUE(eventually([&] { return good->status().sessions == 1; }));
}

TEST_F(IpcdHostile, ClosingTheRequestRingIsAViolation) {
    auto raw = RawSession::connect(d.socket());
    raw->requests.close();
    EXPECT_TRUE(raw->wait_hangup());
    expect_good_client_works();
}

TEST_F(IpcdHostile, GarbageMessagesGetErrorRepliesAndTheSessionLives) {
    auto raw = RawSession::connect(d.socket());
    Message m = ipc::proto::request(Op::status, 0);
    m.tag |= 0xFFFFull << 16;  // reserved bits
    EXPECT_EQ(result_of(*raw->call(m)), Result::invalid_argument);
    m = ipc::proto::request(Op::status, 0, ipc::proto::reply_flag);
    EXPECT_EQ(result_of(*raw->call(m)), Result::invalid_argument);
    m = ipc::proto::request(static_cast<Op>(0xFFFFFFFF), 0);
    EXPECT_EQ(result_of(*raw->call(m)), Result::unknown_op);
    m = named_request(Op::open, "victim");
    m.mr[3] = ~0ull;  // name bytes that are not a name
    EXPECT_EQ(result_of(*raw->call(m)), Result::invalid_argument);
    std::mt19937_64 rng(7);
    for (int i = 0; i < 2000; ++i) {
        Message g;
        g.tag = rng();
        if (i % 2) g.tag = (g.tag & ~(0xFFFFFFFFull << 32)) | (std::uint64_t{rng() % 14} << 32);  // real ops too
        for (auto& r : g.mr) r = (i % 3) ? rng() : rng() % 4;
        auto r = raw->call(g);
        ASSERT_TRUE(r) << "every request gets a reply, message " << i;
        EXPECT_NE(result_of(*r), Result::ok) << "random words should not be a valid request (" << i << ")";
    }
    auto st = raw->call(ipc::proto::request(Op::status, 0));
    ASSERT_TRUE(st);
    EXPECT_EQ(result_of(*st), Result::ok);
    expect_good_client_works();
}

TEST_F(IpcdHostile, AClientThatNeverReadsItsRepliesIsDropped) {
    auto raw = RawSession::connect(d.socket());
    const Message m = ipc::proto::request(Op::status, 0);
    int sent = 0;
    while (sent < 10 * static_cast<int>(ipc::proto::ring_capacity) &&
           raw->requests.send_for(m, 200ms) == ipc::Status::ok)
        ++sent;
    EXPECT_GT(sent, static_cast<int>(ipc::proto::ring_capacity));
    EXPECT_TRUE(raw->wait_hangup());
    EXPECT_NE(d.log().find("does not read its replies"), std::string::npos) << d.log();
    expect_good_client_works();
}

TEST_F(IpcdHostile, AFloodOfRequestsDoesNotStarveOthers) {
    // Flooders keep their request rings full and drain their replies, as
    // fast as they can, until the well-behaved client is done.
    auto* shared = static_cast<std::atomic<long>*>(
        ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(shared, MAP_FAILED);
    std::atomic<long>& stop = shared[0];
    std::atomic<long>& served = shared[1];
    std::vector<pid_t> flooders;
    struct Cleanup {  // the flooders stop even if an assertion ends the test early
        std::atomic<long>& stop;
        std::vector<pid_t>& pids;
        ~Cleanup() {
            stop.store(1);
            for (pid_t p : pids) kill9(p);
            ::munmap(&stop, 4096);
        }
    } cleanup{stop, flooders};
    Pipe ready;
    for (int f = 0; f < 3; ++f) {
        flooders.push_back(spawn([&] {
            auto raw = RawSession::connect(d.socket());
            const Message m = ipc::proto::request(Op::status, 0);
            ready.put();
            Message r;
            long in_flight = 0;  // at most a ring's worth, as the client library does
            while (stop.load(std::memory_order_relaxed) == 0) {
                while (in_flight < static_cast<long>(ipc::proto::ring_capacity) &&
                       raw->requests.try_send(m) == ipc::Status::ok)
                    ++in_flight;
                while (raw->replies.try_recv(r) == ipc::Status::ok) {
                    --in_flight;
                    served.fetch_add(1, std::memory_order_relaxed);
                }
            }
            return 0;
        }));
    }
    for (int f = 0; f < 3; ++f) ASSERT_TRUE(ready.get());
    ASSERT_TRUE(eventually([&] { return served.load() > 1000; }));
    auto worst = std::chrono::steady_clock::duration::zero();
    for (int i = 0; i < 100; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        ASSERT_FALSE(sem.acquire());
        ASSERT_FALSE(sem.release());
        worst = std::max(worst, std::chrono::steady_clock::now() - t0);
    }
    const long during = served.load();
    EXPECT_LT(worst, 2s) << "a flood must not starve the others";
    EXPECT_EQ(d.log().find("dropped"), std::string::npos) << "flooders within the rules are served, not dropped";
    EXPECT_GT(during, 1000) << "the flooders were served too";
}

}  // namespace
