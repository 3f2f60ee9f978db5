// ipcd against hostile clients: junk on the socket, corrupted and scribbled
// rings, garbage messages, floods, clients that never read their replies and
// connection churn. Each must cost the offender its session at most, and a
// well-behaved client next to it must keep working.
//
// The IpcdHostileNeighbour tests also run a well-behaved client in another
// process for the whole test (acquire 1 or 2 of 2 permits, release, with
// fencing tokens that must grow), while a raw client that spoke the
// handshake misbehaves: ring indices out of range, slots and indices
// rewritten while the daemon reads them, descriptors and credentials passed
// over the socket, the sealed session memfd resized or hole-punched,
// releases of permits never granted, a flood of waits. Afterwards ipcd is
// alive, the neighbour never saw a failure, and every semaphore has all its
// permits back with no holders and no waiters.
#include <grp.h>
#include <linux/falloc.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <atomic>
#include <climits>
#include <filesystem>
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

// ---------------------------------------------------------------------------
// Hostile clients next to a well-behaved neighbour in another process

// Descriptors ipcd has open right now.
std::size_t fd_count(pid_t pid) {
    std::size_t n = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) ++n;
    return n;
}

bool daemon_alive(const Daemon& d) { return ::waitpid(d.pid(), nullptr, WNOHANG) == 0; }

// A well-behaved client in its own process: acquire 1 or 2 of the 2 permits
// of "neighbour" (at most 10 s each), check the fencing token grew, release,
// until told to stop. Exit 0, or 1/2/3 for a failed acquire / a token that
// did not grow / a failed release.
class Neighbour {
public:
    static constexpr std::uint32_t permits = 2;

    explicit Neighbour(const Daemon& d) {
        void* p = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
        sh_ = new (p) Shared{};
        Shared* sh = sh_;
        const std::string socket = d.socket();
        pid_ = spawn([sh, socket] {
            auto s = Session::connect(socket);
            auto nsem = Semaphore::open(s, "neighbour");
            std::uint64_t last = 0;
            for (std::uint32_t i = 0; sh->stop.load() == 0; ++i) {
                const std::uint32_t n = 1 + i % permits;
                if (auto ec = nsem.acquire_for(n, 10s)) {
                    std::fprintf(stderr, "neighbour: acquire %u: %s\n", n, ec.message().c_str());
                    return 1;
                }
                if (nsem.fencing_token() <= last) return 2;
                last = nsem.fencing_token();
                if (auto ec = nsem.release(n)) {
                    std::fprintf(stderr, "neighbour: release %u: %s\n", n, ec.message().c_str());
                    return 3;
                }
                sh->rounds.fetch_add(1);
            }
            return 0;
        });
    }
    ~Neighbour() {
        if (pid_ > 0) kill9(pid_);
        ::munmap(sh_, sizeof(Shared));
    }
    Neighbour(const Neighbour&) = delete;
    Neighbour& operator=(const Neighbour&) = delete;

    long rounds() const { return sh_->rounds.load(); }
    // True once it has done `more` rounds from now: it runs alongside.
    bool progresses(long more = 20) const {
        const long target = rounds() + more;
        return eventually([&] { return rounds() >= target; }, 10s);
    }
    // Stops it; its exit code (-1 if it did not stop within 20 s).
    int finish() {
        sh_->stop.store(1);
        const auto rc = wait_exit_for(pid_, 20s);
        if (!rc) kill9(pid_);
        pid_ = -1;
        return rc.value_or(-1);
    }

private:
    struct Shared {
        std::atomic<long> rounds;
        std::atomic<int> stop;
    };
    Shared* sh_ = nullptr;
    pid_t pid_ = -1;
};

class IpcdHostileNeighbour : public IpcdHostile {
protected:
    Semaphore nsem = Semaphore::create(good, "neighbour", Neighbour::permits, 0666);
    Neighbour neighbour{d};

    // A raw client holding the victim's only permit, so that dropping it
    // must give the permit back.
    std::unique_ptr<RawSession> raw_holding_victim() {
        auto raw = RawSession::connect(d.socket());
        auto h = raw->call(named_request(Op::open, "victim"));
        if (!h || result_of(*h) != Result::ok) return nullptr;
        victim_handle = h->mr[2];
        if (result_of(*raw->call(acquire_req(victim_handle, 1))) != Result::ok) return nullptr;
        return raw;
    }
    std::uint64_t victim_handle = 0;

    static Message acquire_req(std::uint64_t handle, std::uint64_t n, std::uint64_t timeout = 0) {
        Message m = ipc::proto::request(Op::acquire, 0);
        m.mr[1] = handle;
        m.mr[2] = n;
        m.mr[3] = timeout;
        return m;
    }
    static Message release_req(std::uint64_t handle, std::uint64_t n) {
        Message m = ipc::proto::request(Op::release, 0);
        m.mr[1] = handle;
        m.mr[2] = n;
        return m;
    }

    // ipcd is alive, the neighbour was served all along and never failed,
    // and both semaphores have every permit back, no holders, no waiters.
    void expect_nobody_else_noticed() {
        EXPECT_TRUE(daemon_alive(d)) << "ipcd died";
        EXPECT_TRUE(neighbour.progresses()) << "the neighbour stopped being served";
        EXPECT_EQ(neighbour.finish(), 0) << "the neighbour saw a failure (see its stderr)";
        expect_good_client_works();  // the victim's permit came back to the pool
        for (auto* s : {&sem, &nsem}) {
            ipc::SemaphoreInfo info;
            EXPECT_TRUE(eventually([&] {
                info = s->stat();
                return info.available == info.permits && info.holders.empty() && info.waiters.empty();
            })) << s->name() << ": " << info.available << " of " << info.permits << " available, "
                << info.holders.size() << " holders, " << info.waiters.size() << " waiters";
        }
        EXPECT_TRUE(eventually([&] { return good->status().waiting == 0; }));
    }
};

// Ring indices out of range, written by the client into its own segment:
// the request ring's (which the daemon reads) or the reply ring's (which the
// daemon writes). Each is the end of that session, and only of that one.
struct IndexAbuse {
    const char* name;
    bool reply_ring;  // else the request ring
    // Rewrites the indices of `ctl`.
    void (*scribble)(ipc::shm::ChannelControl& ctl);
};

const IndexAbuse index_abuses[] = {
    {"RequestTailBehindHead", false,
     [](ipc::shm::ChannelControl& c) { c.tail.value.store(c.head.value.load() - 1); }},
    {"RequestTailAtTheEndOfTime", false, [](ipc::shm::ChannelControl& c) { c.tail.value.store(UINT64_MAX); }},
    {"RequestHeadAheadOfTail", false,
     [](ipc::shm::ChannelControl& c) { c.head.value.store(c.tail.value.load() + 5); }},
    {"ReplyHeadAheadOfTail", true, [](ipc::shm::ChannelControl& c) { c.head.value.store(c.tail.value.load() + 1); }},
    {"ReplyHeadFarBehind", true,
     [](ipc::shm::ChannelControl& c) { c.head.value.store(c.tail.value.load() - 10 * ipc::proto::ring_capacity); }},
    {"ReplyRingClosed", true, [](ipc::shm::ChannelControl& c) { c.header.closed.store(1); }},
};

// By name, so CTest's test names carry no pointer bytes.
void PrintTo(const IndexAbuse& a, std::ostream* os) { *os << a.name; }

class IndexAbuseTest : public IpcdHostileNeighbour, public ::testing::WithParamInterface<IndexAbuse> {};

TEST_P(IndexAbuseTest, EndsOnlyTheOffendersSession) {
    auto raw = raw_holding_victim();
    ASSERT_TRUE(raw);
    ASSERT_TRUE(neighbour.progresses());
    const IndexAbuse& a = GetParam();
    if (a.reply_ring) {
        a.scribble(*const_cast<ipc::shm::ChannelControl*>(raw->replies.control()));
        // The daemon finds out when it next writes a reply (with a stale
        // cached head it may first fill the ring): keep asking, never reading.
        const Message st = ipc::proto::request(Op::status, 0);
        for (int i = 0; i < 3 * static_cast<int>(ipc::proto::ring_capacity); ++i)
            if (raw->requests.send_for(st, 50ms) != ipc::Status::ok) break;
    } else {
        a.scribble(*raw->request_control());
        ring_doorbell(*raw);
    }
    EXPECT_TRUE(raw->wait_hangup()) << "the daemon drops a session whose ring indices are out of range";
    const std::string log = d.log();
    EXPECT_TRUE(log.find("corrupted its request ring") != std::string::npos ||
                log.find("broke its reply ring") != std::string::npos ||
                log.find("does not read its replies") != std::string::npos)
        << log;
    expect_nobody_else_noticed();
}

INSTANTIATE_TEST_SUITE_P(Rings, IndexAbuseTest, ::testing::ValuesIn(index_abuses),
                         [](const ::testing::TestParamInfo<IndexAbuse>& i) { return std::string(i.param.name); });

TEST_F(IpcdHostileNeighbour, RewritingSlotsAndIndicesWhileTheDaemonReadsThem) {
    auto raw = raw_holding_victim();
    ASSERT_TRUE(raw);
    auto* stop = static_cast<std::atomic<int>*>(
        ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(stop, MAP_FAILED);
    // The hammer is another process sharing the mapping (forked), so its
    // writes race with the daemon and with our sends without racing inside
    // this process. Relaxed atomic_ref stores: torn words are not the point,
    // rewritten slots and indices are.
    const std::size_t req_off = static_cast<const ipc::proto::SessionHeader*>(raw->mapping->data())->request_offset;
    auto* seg = static_cast<std::byte*>(raw->mapping->data());
    auto* ctl = raw->request_control();
    const std::uint64_t handle = victim_handle;
    const pid_t hammer = spawn([&] {
        std::mt19937_64 rng(99);
        auto* slots = reinterpret_cast<std::uint64_t*>(seg + req_off + ipc::shm::slots_offset);
        const std::size_t words = ipc::proto::ring_capacity * sizeof(Message) / 8;
        while (stop->load(std::memory_order_relaxed) == 0) {
            const unsigned what = rng() % 100;
            if (what < 70) {  // a random word of a random slot
                std::atomic_ref<std::uint64_t>(slots[rng() % words]).store(rng(), std::memory_order_relaxed);
            } else if (what < 85) {  // a plausible request in a random slot
                const Message m = (rng() % 2) ? acquire_req(handle, 1 + rng() % 2, rng() % 1000000)
                                              : release_req(handle, 1 + rng() % 2);
                const std::size_t at = (rng() % ipc::proto::ring_capacity) * sizeof(Message) / 8;
                for (std::size_t w = 0; w < sizeof(Message) / 8; ++w)
                    std::atomic_ref<std::uint64_t>(slots[at + w])
                        .store(reinterpret_cast<const std::uint64_t*>(&m)[w], std::memory_order_relaxed);
            } else if (what < 93) {  // tail a little ahead of head: slots "published"
                ctl->tail.value.store(ctl->head.value.load() + rng() % (ipc::proto::ring_capacity + 8),
                                      std::memory_order_release);
            } else if (what < 96) {  // any tail at all
                ctl->tail.value.store(rng(), std::memory_order_release);
            } else {
                ring_doorbell(*raw);
            }
        }
        return 0;
    });
    // Meanwhile requests keep flowing through the same ring, replies are
    // drained, and whatever happens to this session happens.
    const auto until = std::chrono::steady_clock::now() + 1500ms;
    std::mt19937_64 rng(5);
    Message r;
    long sent = 0;
    while (std::chrono::steady_clock::now() < until) {
        const Message m = (rng() % 3 == 0) ? ipc::proto::request(Op::status, 0)
                                           : (rng() % 2 ? acquire_req(handle, 1) : release_req(handle, 1));
        if (raw->requests.try_send(m) == ipc::Status::ok) ++sent;
        while (raw->replies.try_recv(r) == ipc::Status::ok) {
        }
        if (::waitpid(d.pid(), nullptr, WNOHANG) != 0) break;
    }
    stop->store(1);
    EXPECT_EQ(wait_exit(hammer), 0);
    ::munmap(stop, 4096);
    EXPECT_TRUE(daemon_alive(d));
    raw.reset();  // gone, if the daemon had not dropped it already
    EXPECT_TRUE(eventually([&] { return good->status().sessions == 2; })) << "the offender's session ended";
    expect_nobody_else_noticed();
    RecordProperty("requests_sent", static_cast<int>(sent));
}

TEST_F(IpcdHostileNeighbour, ADoorbellStormDoesNotStarveOthers) {
    // The daemon sleeps on a futex word in the client's own segment, so a
    // client can bump it and FUTEX_WAKE it without end: every wait ipcd arms
    // on that session ends at once with nothing to read. That costs ipcd
    // CPU; it must not cost the others their service.
    auto raw = raw_holding_victim();
    ASSERT_TRUE(raw);
    auto* stop = static_cast<std::atomic<int>*>(
        ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(stop, MAP_FAILED);
    const pid_t storm = spawn([&] {
        for (unsigned i = 0; stop->load(std::memory_order_relaxed) == 0; ++i) {
            if (i % 8 == 0) {
                ring_doorbell(*raw);
            } else {
                raw->request_control()->not_empty.seq.fetch_add(1, std::memory_order_relaxed);
            }
        }
        return 0;
    });
    const long before = neighbour.rounds();
    auto worst = std::chrono::steady_clock::duration::zero();
    for (int i = 0; i < 50; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        ASSERT_FALSE(nsem.acquire_for(1, 10s));
        ASSERT_FALSE(nsem.release());
        worst = std::max(worst, std::chrono::steady_clock::now() - t0);
    }
    EXPECT_TRUE(neighbour.progresses());
    stop->store(1);
    EXPECT_EQ(wait_exit(storm), 0);
    ::munmap(stop, 4096);
    EXPECT_LT(worst, 2s) << "a doorbell storm must not starve the others";
    EXPECT_GT(neighbour.rounds(), before);
    // The stormer was within its rights: it is still served.
    auto st = raw->call(ipc::proto::request(Op::status, 0));
    ASSERT_TRUE(st);
    EXPECT_EQ(result_of(*st), Result::ok);
    raw.reset();
    expect_nobody_else_noticed();
}

// Sends `data` bytes with `cmsg` ancillary data of `type` on `sock`.
ssize_t send_with_cmsg(int sock, int type, const void* payload, std::size_t payload_len, std::size_t data) {
    char byte = 'x';
    iovec iov{&byte, data};
    std::vector<char> control(CMSG_SPACE(payload_len));
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(payload_len);
    std::memcpy(CMSG_DATA(c), payload, payload_len);
    return ::sendmsg(sock, &msg, MSG_NOSIGNAL);
}

TEST_F(IpcdHostileNeighbour, DescriptorsPassedOverTheSocketAreNeverTaken) {
    ASSERT_TRUE(neighbour.progresses());  // connected: its descriptors are in the baseline
    const std::size_t baseline = fd_count(d.pid());
    auto raw = raw_holding_victim();
    ASSERT_TRUE(raw);
    // Its own socket, its own memfd, an eventfd, /dev/null and both ends of a pipe.
    int pipefd[2];
    ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
    const int efd = ::eventfd(0, EFD_CLOEXEC);
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    const int fds[] = {raw->sock, raw->mapping->fd(), efd, null, pipefd[0], pipefd[1]};
    // Zero bytes with descriptors: a stream socket carries nothing.
    EXPECT_EQ(send_with_cmsg(raw->sock, SCM_RIGHTS, fds, sizeof fds, 0), 0);
    auto st = raw->call(ipc::proto::request(Op::status, 0));
    ASSERT_TRUE(st) << "a zero-byte sendmsg changed nothing: the session is served";
    EXPECT_EQ(result_of(*st), Result::ok);
    // One byte with the descriptors: a protocol violation.
    ASSERT_EQ(send_with_cmsg(raw->sock, SCM_RIGHTS, fds, sizeof fds, 1), 1);
    for (int f : {efd, null, pipefd[0], pipefd[1]}) ::close(f);
    EXPECT_TRUE(raw->wait_hangup());
    EXPECT_NE(d.log().find("wrote to its socket"), std::string::npos) << d.log();
    // ipcd never received them: its descriptors are back to what they were.
    std::size_t now = 0;
    EXPECT_TRUE(eventually([&] { return (now = fd_count(d.pid())) == baseline; }))
        << "ipcd has " << now << " descriptors, " << baseline << " before";
    raw.reset();
    expect_nobody_else_noticed();
    EXPECT_TRUE(eventually([&] { return fd_count(d.pid()) == baseline - 2; }))
        << "the neighbour's session (socket and memfd) closed too";
}

TEST_F(IpcdHostileNeighbour, ForgedCredentialsOverTheSocketChangeNothing) {
    auto raw = raw_holding_victim();
    ASSERT_TRUE(raw);
    // Root may put any credentials in SCM_CREDENTIALS; others only their own.
    ucred cred{::getpid(), ::geteuid() == 0 ? 65534u : ::geteuid(), ::geteuid() == 0 ? 65534u : ::getegid()};
    ASSERT_EQ(send_with_cmsg(raw->sock, SCM_CREDENTIALS, &cred, sizeof cred, 1), 1) << std::strerror(errno);
    EXPECT_TRUE(raw->wait_hangup()) << "ipcd takes identity from SO_PEERCRED at accept only";
    EXPECT_NE(d.log().find("wrote to its socket"), std::string::npos) << d.log();
    expect_nobody_else_noticed();
}

TEST_F(IpcdHostileNeighbour, TheSealedSessionMemfdCannotBeResized) {
    auto raw = raw_holding_victim();
    ASSERT_TRUE(raw);
    const int fd = raw->mapping->fd();
    const auto size = static_cast<off_t>(raw->hello.segment_size);
    ASSERT_EQ(static_cast<off_t>(raw->mapping->size()), size);
    const int seals = ::fcntl(fd, F_GET_SEALS);
    EXPECT_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    auto expect_eperm = [](int rc, const char* what) {
        const int e = errno;
        EXPECT_EQ(rc, -1) << what << " succeeded";
        EXPECT_EQ(e, EPERM) << what << ": " << std::strerror(e);
    };
    expect_eperm(::ftruncate(fd, 0), "ftruncate to 0");
    expect_eperm(::ftruncate(fd, size / 2), "ftruncate to half");
    expect_eperm(::ftruncate(fd, size + 1), "ftruncate one byte larger");
    expect_eperm(::ftruncate(fd, size * 64), "ftruncate larger");
    expect_eperm(::fallocate(fd, 0, size, 4096), "fallocate past the end");
    expect_eperm(::fallocate(fd, 0, 0, size * 2), "fallocate over and past the end");
    char byte = 1;
    expect_eperm(static_cast<int>(::pwrite(fd, &byte, 1, size + 100)), "pwrite past the end");
    expect_eperm(::fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), "adding a seal");
    // A new open file description of the same memfd is sealed just the same.
    const int again = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(again, 0);
    expect_eperm(::ftruncate(again, 0), "ftruncate through /proc/self/fd");
    ::close(again);
    struct stat sb {};
    ASSERT_EQ(::fstat(fd, &sb), 0);
    EXPECT_EQ(sb.st_size, size) << "the segment kept its size";

    // Mapping more than the segment is allowed, but touching past its end
    // faults only the toucher (SIGBUS), never ipcd.
    const pid_t toucher = spawn([&] {
        const long page = ::sysconf(_SC_PAGESIZE);
        const std::size_t mapped = (static_cast<std::size_t>(size) + page - 1) / page * page + 2 * page;
        auto* p = static_cast<volatile char*>(::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
        if (p == MAP_FAILED) return 3;
        ::signal(SIGBUS, SIG_DFL);  // not a sanitizer's report: die of it
        p[mapped - 1] = 1;          // SIGBUS
        return 0;
    });
    EXPECT_EQ(wait_exit(toucher), 128 + SIGBUS);
    auto st = raw->call(ipc::proto::request(Op::status, 0));
    ASSERT_TRUE(st) << "after all that, the session is still served";
    EXPECT_EQ(result_of(*st), Result::ok);

    // The seals leave one thing: punching a hole, which zeroes the pages in
    // every mapping (ipcd's too). The rings then read as zero: that session's
    // business, not a fault in ipcd.
    ASSERT_EQ(::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, size), 0) << std::strerror(errno);
    ring_doorbell(*raw);
    for (int i = 0; i < 5; ++i) (void)raw->call(ipc::proto::request(Op::status, 0), 100ms);
    EXPECT_TRUE(daemon_alive(d));
    raw.reset();
    expect_nobody_else_noticed();
}

TEST_F(IpcdHostileNeighbour, ReleasingPermitsNeverGrantedIsRefusedAndChangesNothing) {
    auto raw = RawSession::connect(d.socket());
    auto h = raw->call(named_request(Op::open, "victim"));
    auto hn = raw->call(named_request(Op::open, "neighbour"));
    ASSERT_TRUE(h && hn);
    const std::uint64_t victim = h->mr[2], nb = hn->mr[2];
    auto result = [&](const Message& m) {
        auto r = raw->call(m);
        return r ? result_of(*r) : Result::end;  // `end`: no reply at all
    };
    // The neighbour holds permits of "neighbour" all the time: releasing
    // them from another session must never work, whatever the count.
    for (std::uint64_t n : {std::uint64_t{1}, std::uint64_t{2}, (std::uint64_t{1} << 32) + 1, ~std::uint64_t{0}})
        EXPECT_EQ(result(release_req(nb, n)), Result::over_release) << "count " << n;
    for (int i = 0; i < 2000; ++i) ASSERT_EQ(result(release_req(nb, 1 + i % 2)), Result::over_release);
    EXPECT_EQ(result(release_req(victim, 1)), Result::over_release);
    // Holding one: releasing two (or 2^32 + 1, which must not wrap to 1) is
    // refused and the one stays held.
    EXPECT_EQ(result(acquire_req(victim, (std::uint64_t{1} << 32) + 1)), Result::too_many);
    ASSERT_EQ(result(acquire_req(victim, 1)), Result::ok);
    EXPECT_EQ(result(release_req(victim, 2)), Result::over_release);
    EXPECT_EQ(result(release_req(victim, (std::uint64_t{1} << 32) + 1)), Result::over_release);
    EXPECT_EQ(sem.stat().available, 0u) << "a refused release changed the count";
    EXPECT_EQ(result(release_req(victim, 1)), Result::ok);
    EXPECT_EQ(result(release_req(victim, 1)), Result::over_release);
    EXPECT_EQ(result(release_req(12345, 1)), Result::bad_handle);
    EXPECT_EQ(result(release_req(victim, 0)), Result::invalid_argument);
    EXPECT_EQ(sem.stat().available, 1u);
    // And through the client library, in this process.
    auto s2 = d.connect();
    auto nsem2 = Semaphore::open(s2, "neighbour");
    EXPECT_EQ(nsem2.release(1), code(Result::over_release));
    auto st = raw->call(ipc::proto::request(Op::status, 0));
    ASSERT_TRUE(st);
    EXPECT_EQ(result_of(*st), Result::ok) << "refusals do not end a session";
    expect_nobody_else_noticed();
}

TEST_F(IpcdHostileNeighbour, AFloodOfWaitsStopsAtTheUsersLimit) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run the flooder as another uid (root has no wait limit)";
    ASSERT_FALSE(sem.acquire_for(1, 10s));  // so every wait on "victim" queues
    auto* seen = static_cast<std::atomic<long>*>(
        ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(seen, MAP_FAILED);
    std::atomic<long>& limited = seen[0];
    std::atomic<long>& other = seen[1];
    const std::string socket = d.socket();
    const pid_t flooder = spawn([&] {
        constexpr gid_t nobody = 65534;
        if (::setgroups(0, nullptr) != 0 || ::setgid(nobody) != 0 || ::setuid(nobody) != 0) return 5;
        auto fraw = RawSession::connect(socket);
        auto h = fraw->call(named_request(Op::open, "victim"));
        if (!h || result_of(*h) != Result::ok) return 6;
        const Message acq = acquire_req(h->mr[2], 1, ipc::proto::wait_forever);
        Message r;
        // Never stopping by itself, as fast as its replies allow: bursts of
        // half a ring, then every answer drained (refusals come at once;
        // queued waits answer nothing), so it is never dropped for not
        // reading its replies and meets the limit itself.
        for (;;) {
            for (unsigned i = 0; i < ipc::proto::ring_capacity / 2; ++i) (void)fraw->requests.try_send(acq);
            while (fraw->replies.recv_for(r, 5ms) == ipc::Status::ok)
                (result_of(r) == Result::limit ? limited : other).fetch_add(1);
        }
    });
    EXPECT_TRUE(eventually([&] { return limited.load() > 100; }))
        << "waits beyond the per-user limit are refused (" << limited.load() << ")";
    const auto st = good->status();
    EXPECT_EQ(st.waiting, 1024u) << "the default --max-waits-per-user";
    EXPECT_EQ(other.load(), 0) << "no wait was granted or failed otherwise";
    EXPECT_TRUE(neighbour.progresses()) << "a flood of waits elsewhere does not stop the neighbour";
    kill9(flooder);
    ::munmap(seen, 4096);
    EXPECT_TRUE(eventually([&] { return good->status().waiting == 0; })) << "the dead flooder's waits are cancelled";
    ASSERT_FALSE(sem.release());
    expect_nobody_else_noticed();
}

}  // namespace
