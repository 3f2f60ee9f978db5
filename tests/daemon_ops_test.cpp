// ipcd end to end: every operation and every error, through the client
// library (ipc/semaphore.hpp) against the real daemon.
#include <sys/resource.h>

#include <atomic>
#include <future>
#include <thread>

#include "daemon_harness.hpp"

namespace {

using namespace ipcd_test;
using ipc::Semaphore;
using ipc::Session;

class IpcdOps : public ::testing::Test {
protected:
    Daemon d;
    std::shared_ptr<Session> s = d.connect();
};

// --- connecting --------------------------------------------------------------

TEST(IpcdConnect, NoDaemonSaysSoWithTheErrno) {
    const std::string dir = make_temp_dir();
    try {
        Session::connect(dir + "/none.sock");
        ADD_FAILURE() << "connected to nothing";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
        EXPECT_NE(std::string(e.what()).find("is ipcd running?"), std::string::npos) << e.what();
    }
    // A socket file nobody listens on: ECONNREFUSED.
    const std::string stale = dir + "/stale.sock";
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", stale.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
    try {
        Session::connect(stale);
        ADD_FAILURE() << "connected to a dead socket";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::connection_refused);
        EXPECT_NE(std::string(e.what()).find("no daemon at " + stale), std::string::npos) << e.what();
    }
    std::filesystem::remove_all(dir);
}

TEST(IpcdConnect, DefaultPathHonoursEnvironment) {
    ::setenv("IPCD_SOCKET", "/tmp/x/ipcd.sock", 1);
    EXPECT_EQ(Session::default_socket_path(), "/tmp/x/ipcd.sock");
    ::unsetenv("IPCD_SOCKET");
    if (::geteuid() == 0) {
        EXPECT_EQ(Session::default_socket_path(), "/run/ipcd/ipcd.sock");
    }
}

TEST_F(IpcdOps, SessionsAreDistinctAndCounted) {
    auto s2 = d.connect();
    EXPECT_NE(s->id(), 0u);
    EXPECT_NE(s->id(), s2->id());
    EXPECT_EQ(s->socket_path(), d.socket());
    // The socket is close-on-exec unless asked otherwise.
    EXPECT_TRUE(::fcntl(s->socket_fd(), F_GETFD) & FD_CLOEXEC);
    s->set_inheritable(true);
    EXPECT_FALSE(::fcntl(s->socket_fd(), F_GETFD) & FD_CLOEXEC);
    s->set_inheritable(false);
    auto st = s->status();
    EXPECT_EQ(st.sessions, 2u);
    EXPECT_EQ(st.semaphores, 0u);
    EXPECT_EQ(st.waiting, 0u);
    EXPECT_EQ(st.pid, d.pid());
    const auto age = std::chrono::system_clock::now() - st.started;
    EXPECT_GE(age, -1s);
    EXPECT_LT(age, 60s);
    s2.reset();
    EXPECT_TRUE(eventually([&] { return s->status().sessions == 1; }));
}

// --- create / open / acquire / release ---------------------------------------------

TEST_F(IpcdOps, CreateAcquireStatRelease) {
    auto sem = Semaphore::create(s, "db", 3, 0640);
    EXPECT_TRUE(sem.valid());
    EXPECT_EQ(sem.name(), "db");
    EXPECT_EQ(sem.fencing_token(), 0u);
    ASSERT_FALSE(sem.acquire(2));
    const auto t1 = sem.fencing_token();
    EXPECT_GT(t1, 0u);
    auto info = sem.stat(true);
    EXPECT_EQ(info.name, "db");
    EXPECT_EQ(info.permits, 3u);
    EXPECT_EQ(info.available, 1u);
    EXPECT_EQ(info.holder_count, 1u);
    EXPECT_EQ(info.waiter_count, 0u);
    EXPECT_EQ(info.owner, ::geteuid());
    EXPECT_EQ(info.group, ::getegid());
    EXPECT_EQ(info.mode, 0640u);
    EXPECT_FALSE(info.persistent);
    EXPECT_EQ(info.last_token, t1);
    ASSERT_EQ(info.holders.size(), 1u);
    EXPECT_EQ(info.holders[0].pid, ::getpid());
    EXPECT_EQ(info.holders[0].uid, ::geteuid());
    EXPECT_EQ(info.holders[0].count, 2u);
    EXPECT_EQ(info.holders[0].session, s->id());
    EXPECT_LT(std::chrono::system_clock::now() - info.holders[0].since, 60s);
    ASSERT_FALSE(sem.release(1));
    ASSERT_FALSE(sem.acquire(1));
    EXPECT_GT(sem.fencing_token(), t1);
    ASSERT_FALSE(sem.release(2));
    EXPECT_EQ(sem.stat(false).available, 3u);
}

TEST_F(IpcdOps, CreateErrors) {
    auto sem = Semaphore::create(s, "x", 1);
    try {
        Semaphore::create(s, "x", 1);
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), code(Result::exists));
        EXPECT_STREQ(e.code().category().name(), "ipcd");
        EXPECT_NE(std::string(e.what()).find("create semaphore 'x'"), std::string::npos) << e.what();
    }
    auto expect = [&](Result r, auto&& f) {
        try {
            f();
            ADD_FAILURE() << "expected " << ipc::proto::describe(r);
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), code(r)) << e.what();
        }
    };
    expect(Result::invalid_argument, [&] { Semaphore::create(s, "", 1); });
    expect(Result::invalid_argument, [&] { Semaphore::create(s, ".dot", 1); });
    expect(Result::invalid_argument, [&] { Semaphore::create(s, std::string(33, 'a'), 1); });
    expect(Result::invalid_argument, [&] { Semaphore::create(s, "slash/no", 1); });
    expect(Result::invalid_argument, [&] { Semaphore::create(s, "zero", 0); });
    expect(Result::invalid_argument, [&] { Semaphore::create(s, "mode", 1, 01777); });
    expect(Result::not_found, [&] { Semaphore::open(s, "missing"); });
    expect(Result::not_found, [&] { Semaphore::remove(*s, "missing"); });
    expect(Result::not_found, [&] { s->stat("missing"); });
    // The longest legal name works.
    auto longest = Semaphore::create(s, std::string(32, 'L'), 1);
    EXPECT_EQ(longest.stat(false).name, std::string(32, 'L'));
}

TEST_F(IpcdOps, AcquireErrors) {
    auto sem = Semaphore::create(s, "a", 2);
    EXPECT_EQ(sem.acquire(0), code(Result::invalid_argument));
    EXPECT_EQ(sem.acquire(3), code(Result::too_many));
    EXPECT_EQ(sem.try_acquire(3), code(Result::too_many));
    ASSERT_FALSE(sem.try_acquire(2));
    EXPECT_EQ(sem.try_acquire(1), code(Result::would_block));
    EXPECT_EQ(sem.release(3), code(Result::over_release));
    EXPECT_EQ(sem.release(0), code(Result::invalid_argument));
    EXPECT_EQ(sem.stat(false).available, 0u) << "a refused release changes nothing";
    ASSERT_FALSE(sem.release(2));
    EXPECT_EQ(sem.release(1), code(Result::over_release));
    Semaphore empty;
    EXPECT_FALSE(empty.valid());
    EXPECT_EQ(empty.acquire(), code(Result::bad_handle));
    EXPECT_EQ(empty.release(), code(Result::bad_handle));
}

TEST_F(IpcdOps, ReleaseBelongsToTheSessionThatAcquired) {
    auto a = Semaphore::create(s, "own", 2);
    auto s2 = d.connect();
    auto b = Semaphore::open(s2, "own");
    ASSERT_FALSE(a.acquire(1));
    EXPECT_EQ(b.release(1), code(Result::over_release));
    // Two handles on one name in one session share the session's permits.
    auto a2 = Semaphore::open(s, "own");
    EXPECT_FALSE(a2.release(1));
}

TEST_F(IpcdOps, AcquireForTimesOut) {
    auto sem = Semaphore::create(s, "t", 1);
    ASSERT_FALSE(sem.acquire());
    auto s2 = d.connect();
    auto other = Semaphore::open(s2, "t");
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(other.acquire_for(1, 100ms), code(Result::timed_out));
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, 100ms);
    EXPECT_LT(took, 5s);
    EXPECT_EQ(other.acquire_for(1, 0ms), code(Result::timed_out));
    EXPECT_EQ(sem.stat(false).waiter_count, 0u);
}

TEST_F(IpcdOps, AcquireForSucceedsWhenReleasedInTime) {
    auto sem = Semaphore::create(s, "t", 1);
    ASSERT_FALSE(sem.acquire());
    auto s2 = d.connect();
    auto other = Semaphore::open(s2, "t");
    auto waiter = std::async(std::launch::async, [&] { return other.acquire_for(1, 30s); });
    ASSERT_TRUE(eventually([&] { return sem.stat(false).waiter_count == 1; }));
    ASSERT_FALSE(sem.release());
    EXPECT_FALSE(waiter.get());
    EXPECT_GT(other.fencing_token(), sem.fencing_token());
}

TEST_F(IpcdOps, GrantsFollowArrivalOrderAcrossSessions) {
    auto sem = Semaphore::create(s, "fifo", 1);
    ASSERT_FALSE(sem.acquire());
    constexpr int n = 5;
    std::vector<std::shared_ptr<Session>> sessions;
    std::vector<Semaphore> sems;
    for (int i = 0; i < n; ++i) {
        sessions.push_back(d.connect());
        sems.push_back(Semaphore::open(sessions.back(), "fifo"));
    }
    std::vector<std::future<std::error_code>> waits;
    for (int i = 0; i < n; ++i) {
        waits.push_back(std::async(std::launch::async, [&, i] {
            auto ec = sems[i].acquire();
            if (!ec) ec = sems[i].release();
            return ec;
        }));
        // Queue them one at a time so the arrival order is known.
        ASSERT_TRUE(eventually([&] { return sem.stat(false).waiter_count == static_cast<std::uint32_t>(i + 1); }));
    }
    auto info = sem.stat(true);
    ASSERT_EQ(info.waiters.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) EXPECT_EQ(info.waiters[i].session, sessions[i]->id());
    ASSERT_FALSE(sem.release());
    for (auto& w : waits) EXPECT_FALSE(w.get());
    for (int i = 1; i < n; ++i) EXPECT_GT(sems[i].fencing_token(), sems[i - 1].fencing_token()) << i;
}

TEST_F(IpcdOps, BigWaiterAtTheHeadBlocksSmallerOnesBehindIt) {
    auto sem = Semaphore::create(s, "strict", 3);
    ASSERT_FALSE(sem.acquire(2));  // 1 left
    auto s2 = d.connect(), s3 = d.connect();
    auto big = Semaphore::open(s2, "strict"), small = Semaphore::open(s3, "strict");
    auto wbig = std::async(std::launch::async, [&] { return big.acquire(2); });
    ASSERT_TRUE(eventually([&] { return sem.stat(false).waiter_count == 1; }));
    auto wsmall = std::async(std::launch::async, [&] { return small.acquire(1); });
    ASSERT_TRUE(eventually([&] { return sem.stat(false).waiter_count == 2; }));
    EXPECT_EQ(small.try_acquire(1), code(Result::would_block)) << "1 is available but the queue is not empty";
    EXPECT_EQ(sem.stat(false).available, 1u);
    ASSERT_FALSE(sem.release(1));  // 2 available: the head gets them
    EXPECT_FALSE(wbig.get());
    EXPECT_EQ(wsmall.wait_for(0s), std::future_status::timeout);
    ASSERT_FALSE(sem.release(1));
    EXPECT_FALSE(wsmall.get());
    EXPECT_GT(small.fencing_token(), big.fencing_token());
}

TEST_F(IpcdOps, ListAndSessionStat) {
    auto b = Semaphore::create(s, "bravo", 2);
    auto a = Semaphore::create(s, "alpha", 1, 0644, /*persist=*/false);
    ASSERT_FALSE(b.acquire());
    auto all = s->list();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].name, "alpha");
    EXPECT_EQ(all[1].name, "bravo");
    EXPECT_EQ(all[1].permits, 2u);
    EXPECT_EQ(all[1].available, 1u);
    auto st = s->stat("bravo");
    EXPECT_EQ(st.holders.size(), 1u);
    EXPECT_EQ(st.available, 1u);
    EXPECT_EQ(s->status().semaphores, 2u);
}

TEST_F(IpcdOps, RemoveAnswersWaitersAndEndsHolders) {
    auto sem = Semaphore::create(s, "gone", 1);
    ASSERT_FALSE(sem.acquire());
    auto s2 = d.connect();
    auto other = Semaphore::open(s2, "gone");
    auto w = std::async(std::launch::async, [&] { return other.acquire(); });
    ASSERT_TRUE(eventually([&] { return sem.stat(false).waiter_count == 1; }));
    Semaphore::remove(*s, "gone");
    EXPECT_EQ(w.get(), code(Result::deleted));
    EXPECT_EQ(sem.release(), code(Result::not_found));
    EXPECT_THROW(sem.stat(), std::system_error);
    EXPECT_TRUE(s->list().empty());
    // The name can be reused; the old handle does not reach the new semaphore.
    auto again = Semaphore::create(s, "gone", 5);
    EXPECT_EQ(sem.acquire(), code(Result::not_found));
    EXPECT_EQ(again.stat(false).available, 5u);
}

TEST_F(IpcdOps, DroppingAHandleKeepsItsPermitsUntilTheSessionEnds) {
    {
        auto sem = Semaphore::create(s, "kept", 1);
        ASSERT_FALSE(sem.acquire());
    }  // ~Semaphore: close refused (busy), the permit stays held
    auto s2 = d.connect();
    auto other = Semaphore::open(s2, "kept");
    EXPECT_EQ(other.try_acquire(), code(Result::would_block));
    s.reset();  // the session ends: the permit comes back
    EXPECT_FALSE(other.acquire_for(1, 10s));
}

TEST_F(IpcdOps, GuardAcquiresAndReleases) {
    auto sem = Semaphore::create(s, "g", 2);
    {
        ipc::SemaphoreGuard g(sem, 2);
        EXPECT_GT(g.token(), 0u);
        EXPECT_EQ(sem.stat(false).available, 0u);
        EXPECT_THROW(ipc::SemaphoreGuard(sem, 3), std::system_error);
    }
    EXPECT_EQ(sem.stat(false).available, 2u);
}

TEST_F(IpcdOps, RawCallsGetErrorsForBadRequests) {
    ipc::Message rep;
    EXPECT_EQ(s->call(ipc::proto::request(static_cast<ipc::proto::Op>(77), 0), rep), code(Result::unknown_op));
    EXPECT_EQ(rep.label(), 77u);
    EXPECT_TRUE(rep.flags() & ipc::proto::reply_flag);
    ipc::Message acq = ipc::proto::request(ipc::proto::Op::acquire, 0);
    acq.mr[1] = 12345;
    acq.mr[2] = 1;
    EXPECT_EQ(s->call(acq, rep), code(Result::bad_handle));
    ipc::Message close = ipc::proto::request(ipc::proto::Op::close, 0);
    close.mr[1] = 12345;
    EXPECT_EQ(s->call(close, rep), code(Result::bad_handle));
    // busy: the last close of a handle through which permits are held.
    auto sem = Semaphore::create(s, "busy", 1);
    ASSERT_FALSE(sem.acquire());
    ipc::Message open = named_request(ipc::proto::Op::open, "busy");
    ASSERT_FALSE(s->call(open, rep));
    close.mr[1] = rep.mr[2];  // the same handle as sem's, opened twice now
    EXPECT_FALSE(s->call(close, rep));
    EXPECT_EQ(s->call(close, rep), code(Result::busy));
    ASSERT_FALSE(sem.release());
    EXPECT_FALSE(s->call(close, rep)) << "nothing held: the last close goes through";
    // The session is unharmed.
    EXPECT_EQ(s->status().sessions, 1u);
}

TEST_F(IpcdOps, ErrorMessagesDescribeTheResult) {
    EXPECT_EQ(code(Result::over_release).message(), ipc::proto::describe(Result::over_release));
    EXPECT_EQ(code(Result::limit).message(), "a per-user limit of the daemon was reached");
}

// An idle daemon sleeps: no CPU while a session is open and a wait has no deadline.
TEST_F(IpcdOps, IdleDaemonUsesNoCpu) {
    auto sem = Semaphore::create(s, "idle", 1);
    ASSERT_FALSE(sem.acquire());
    auto s2 = d.connect();
    auto other = Semaphore::open(s2, "idle");
    auto w = std::async(std::launch::async, [&] { return other.acquire(); });
    ASSERT_TRUE(eventually([&] { return sem.stat(false).waiter_count == 1; }));
    auto cpu = [&] {
        std::ifstream in("/proc/" + std::to_string(d.pid()) + "/stat");
        std::string line;
        std::getline(in, line);
        std::istringstream f(line.substr(line.rfind(')') + 2));
        std::string field;
        long ticks = 0;
        for (int i = 3; i <= 15 && f >> field; ++i)
            if (i == 14 || i == 15) ticks += std::stol(field);  // utime + stime
        return ticks;
    };
    const long before = cpu();
    std::this_thread::sleep_for(500ms);  // measuring idleness, not waiting for anything
    EXPECT_LE(cpu() - before, 1) << "ipcd burned CPU while idle";
    ASSERT_FALSE(sem.release());
    EXPECT_FALSE(w.get());
}

// --- the client's handshake checks, against a fake daemon ---------------------------

class FakeDaemon {
public:
    FakeDaemon() : dir_(make_temp_dir()), path_(dir_ + "/fake.sock") {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 4) != 0)
            throw std::runtime_error("fake daemon");
    }
    ~FakeDaemon() {
        ::close(fd_);
        std::filesystem::remove_all(dir_);
    }
    // Answers the next connection with `hello` (and no memfd), in a thread.
    std::thread answer(ipc::proto::Hello hello) {
        return std::thread([this, hello] {
            const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            (void)!::write(c, &hello, sizeof hello);
            char b;
            (void)!::read(c, &b, 1);  // until the client hangs up
            ::close(c);
        });
    }
    const std::string& path() const { return path_; }

private:
    std::string dir_, path_;
    int fd_ = -1;
};

TEST(IpcdHandshake, ClientRejectsAnotherProtocolVersion) {
    FakeDaemon f;
    auto t = f.answer({ipc::proto::hello_magic, ipc::proto::version + 1, 7, 0, 4096});
    try {
        Session::connect(f.path());
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::protocol_error);
        EXPECT_NE(std::string(e.what()).find("protocol version 2"), std::string::npos) << e.what();
    }
    t.join();
}

TEST(IpcdHandshake, ClientRejectsBadMagic) {
    FakeDaemon f;
    auto t = f.answer({0x12345678, ipc::proto::version, 7, 0, 4096});
    try {
        Session::connect(f.path());
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::protocol_error);
    }
    t.join();
}

TEST(IpcdHandshake, ClientReportsARefusal) {
    FakeDaemon f;
    auto t = f.answer({ipc::proto::hello_magic, ipc::proto::version, 0, static_cast<std::uint32_t>(Result::limit), 0});
    try {
        Session::connect(f.path());
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), code(Result::limit));
    }
    t.join();
}

TEST(IpcdHandshake, ClientRejectsAHelloWithoutSegment) {
    FakeDaemon f;
    auto t = f.answer({ipc::proto::hello_magic, ipc::proto::version, 3, 0, 4096});
    try {
        Session::connect(f.path());
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::protocol_error);
    }
    t.join();
}

// --- the segment the daemon hands out ------------------------------------------------

TEST_F(IpcdOps, SessionSegmentIsSealedAndDescribed) {
    auto raw = RawSession::connect(d.socket());
    EXPECT_EQ(raw->hello.magic, ipc::proto::hello_magic);
    EXPECT_EQ(raw->hello.version, ipc::proto::version);
    EXPECT_NE(raw->hello.session_id, 0u);
    const auto* h = static_cast<const ipc::proto::SessionHeader*>(raw->mapping->data());
    EXPECT_EQ(h->magic, ipc::proto::session_magic);
    EXPECT_EQ(h->session_id, raw->hello.session_id);
    EXPECT_EQ(h->client_pid, static_cast<std::uint32_t>(::getpid()));
    EXPECT_EQ(h->client_uid, ::geteuid());
    EXPECT_EQ(h->ring_capacity, ipc::proto::ring_capacity);
    EXPECT_EQ(h->request_offset, sizeof(ipc::proto::SessionHeader));
    EXPECT_EQ(raw->requests.capacity(), ipc::proto::ring_capacity);
    EXPECT_EQ(raw->mapping->size(), raw->hello.segment_size);
    const int seals = ::fcntl(raw->mapping->fd(), F_GET_SEALS);
    EXPECT_TRUE(seals & F_SEAL_SHRINK);
    EXPECT_TRUE(seals & F_SEAL_GROW);
    EXPECT_NE(::ftruncate(raw->mapping->fd(), 0), 0) << "a client must not be able to shrink its segment";
    auto r = raw->call(ipc::proto::request(ipc::proto::Op::status, 0));
    ASSERT_TRUE(r);
    EXPECT_EQ(result_of(*r), Result::ok);
    EXPECT_EQ(r->mr[2], 2u);
}

}  // namespace
