// ipcd end to end: a session's life and death (kill -9 of holders, waiters
// and the daemon itself, fork and exec inheritance, SIGTERM), the socket
// file, credentials-based permissions and per-user limits.
#include <grp.h>

#include <future>

#include "daemon_harness.hpp"

namespace {

using namespace ipcd_test;
using ipc::Semaphore;
using ipc::Session;

constexpr uid_t nobody = 65534;
constexpr gid_t nogroup = 65534;

// In a forked child: become `uid`/`gid` for good (tests run as root).
void become(uid_t uid, gid_t gid, std::vector<gid_t> groups = {}) {
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)
        throw std::runtime_error("cannot drop privileges");
}

class IpcdLife : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop to other uids";
    }
    Daemon d;
    std::shared_ptr<Session> s = d.connect();
};

// --- a session ends with its last descriptor -----------------------------------

TEST_F(IpcdLife, KillNineOfAHolderGivesItsPermitsBack) {
    auto sem = Semaphore::create(s, "k", 2);
    Pipe ready;
    const pid_t child = spawn([&] {
        auto cs = d.connect();
        auto csem = Semaphore::open(cs, "k");
        if (csem.acquire(2)) return 1;
        ready.put();
        ::pause();
        return 0;
    });
    ASSERT_TRUE(ready.get());
    EXPECT_EQ(sem.try_acquire(), code(Result::would_block));
    auto waiter = std::async(std::launch::async, [&] { return sem.acquire_for(2, 10s); });
    ASSERT_TRUE(eventually([&] { return sem.stat(false).waiter_count == 1; }));
    kill9(child);
    EXPECT_FALSE(waiter.get()) << "the dead holder's permits go to the waiter";
    auto info = sem.stat();
    ASSERT_EQ(info.holders.size(), 1u);
    EXPECT_EQ(info.holders[0].session, s->id());
    EXPECT_NE(d.log().find("gave back 2 permits on 1 semaphore,"), std::string::npos);
}

TEST_F(IpcdLife, KillNineOfAWaiterRemovesItsWait) {
    auto sem = Semaphore::create(s, "w", 1);
    ASSERT_FALSE(sem.acquire());
    const pid_t child = spawn([&] {
        auto cs = d.connect();
        auto csem = Semaphore::open(cs, "w");
        return csem.acquire() ? 1 : 0;
    });
    ASSERT_TRUE(eventually([&] { return sem.stat(false).waiter_count == 1; }));
    kill9(child);
    ASSERT_TRUE(eventually([&] { return sem.stat(false).waiter_count == 0; }));
    ASSERT_FALSE(sem.release());
    auto info = sem.stat();
    EXPECT_EQ(info.available, 1u) << "nothing was granted to the dead waiter";
    EXPECT_TRUE(info.holders.empty());
    EXPECT_EQ(s->status().waiting, 0u);
}

TEST_F(IpcdLife, AForkedChildKeepsTheSessionsPermitsUntilItExits) {
    auto observer = d.connect();
    Pipe go;
    pid_t child;
    {
        auto mine = d.connect();
        auto sem = Semaphore::create(mine, "inherit", 1);
        ASSERT_FALSE(sem.acquire());
        child = spawn([&] {
            // Holds the inherited session without using it.
            return go.get(30s) ? 0 : 1;
        });
    }  // the parent's handles and session are gone; the child still has the socket
    auto osem = Semaphore::open(observer, "inherit");
    EXPECT_EQ(osem.try_acquire(), code(Result::would_block));
    EXPECT_EQ(osem.stat().holders.size(), 1u);
    go.put();
    EXPECT_EQ(wait_exit(child), 0);
    EXPECT_FALSE(osem.acquire_for(1, 10s)) << "the permit came back when the last descriptor closed";
}

TEST_F(IpcdLife, AnExecedCommandInheritsTheSessionWhenAsked) {
    auto observer = d.connect();
    Pipe stdin_pipe;
    pid_t child;
    {
        auto mine = d.connect();
        auto sem = Semaphore::create(mine, "exec", 1);
        ASSERT_FALSE(sem.acquire());
        mine->set_inheritable(true);
        child = spawn([&] {
            ::dup2(stdin_pipe.read_fd(), 0);
            ::execl("/bin/sh", "sh", "-c", "read line", static_cast<char*>(nullptr));
            return 127;
        });
    }
    auto osem = Semaphore::open(observer, "exec");
    EXPECT_EQ(osem.try_acquire(), code(Result::would_block)) << "held while the command runs, like flock(1)";
    stdin_pipe.put('\n');
    EXPECT_EQ(wait_exit(child), 0);
    EXPECT_FALSE(osem.acquire_for(1, 10s));
}

// --- the daemon's death and stop ---------------------------------------------------

TEST_F(IpcdLife, SigtermAnswersWaitersStoppingAndExitsZero) {
    auto sem = Semaphore::create(s, "stop", 1);
    ASSERT_FALSE(sem.acquire());
    auto s2 = d.connect();
    auto other = Semaphore::open(s2, "stop");
    auto forever = std::async(std::launch::async, [&] { return other.acquire(); });
    auto timed = std::async(std::launch::async, [&] { return other.acquire_for(1, 60s); });
    ASSERT_TRUE(eventually([&] { return sem.stat(false).waiter_count == 2; }));
    EXPECT_EQ(d.terminate(SIGTERM), 0);
    EXPECT_EQ(forever.get(), code(Result::stopping));
    EXPECT_EQ(timed.get(), code(Result::stopping));
    EXPECT_EQ(sem.release(), std::errc::connection_reset) << "after the stop every call fails";
    EXPECT_FALSE(std::filesystem::exists(d.socket())) << "the socket file goes with the daemon";
}

TEST_F(IpcdLife, SigintStopsToo) { EXPECT_EQ(d.terminate(SIGINT), 0); }

// SIGHUP re-reads the configuration (here /dev/null: nothing declared) and
// touches no session or semaphore.
TEST_F(IpcdLife, SighupReloadsWithoutDisturbingSessions) {
    auto sem = Semaphore::create(s, "kept", 2);
    ASSERT_FALSE(sem.acquire());
    ::kill(d.pid(), SIGHUP);
    ASSERT_TRUE(eventually([&] { return d.log().find("configuration reloaded") != std::string::npos; })) << d.log();
    EXPECT_NE(d.log().find("SIGHUP from pid " + std::to_string(::getpid())), std::string::npos) << d.log();
    EXPECT_EQ(s->status().sessions, 1u);
    const auto info = sem.stat();
    EXPECT_EQ(info.available, 1u) << "the permit held before the reload is still held";
    EXPECT_FALSE(sem.release());
}

TEST_F(IpcdLife, AKilledDaemonMakesCallsFailFast) {
    auto sem = Semaphore::create(s, "dead", 1);
    ASSERT_FALSE(sem.acquire());
    auto s2 = d.connect();
    auto other = Semaphore::open(s2, "dead");
    auto waiting = std::async(std::launch::async, [&] { return other.acquire(); });
    ASSERT_TRUE(eventually([&] { return sem.stat(false).waiter_count == 1; }));
    d.kill_hard();
    ASSERT_EQ(waiting.wait_for(5s), std::future_status::ready) << "a waiting call must notice the daemon died";
    EXPECT_EQ(waiting.get(), std::errc::connection_reset);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(sem.release(), std::errc::connection_reset);
    EXPECT_EQ(sem.try_acquire(), std::errc::connection_reset);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    try {
        s->status();
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_NE(std::string(e.what()).find("ipcd went away"), std::string::npos) << e.what();
    }
}

// --- the socket file ---------------------------------------------------------------

TEST(IpcdSocketFile, AStaleSocketIsReplacedAndALiveOneRefused) {
    const std::string dir = make_temp_dir();
    {
        Daemon first({}, dir);
        auto [rc, out] = run_ipcd({"--socket", first.socket()}, dir + "/second.out");
        EXPECT_EQ(rc, 1);
        EXPECT_NE(out.find("already serving " + first.socket()), std::string::npos) << out;
        auto s = first.connect();
        EXPECT_EQ(s->status().sessions, 1u) << "the live daemon was not disturbed";
        first.kill_hard();  // leaves its socket file behind
        ASSERT_TRUE(std::filesystem::exists(first.socket()));
    }
    Daemon second({}, dir);
    EXPECT_NE(second.log().find("removed stale socket"), std::string::npos) << second.log();
    EXPECT_EQ(second.connect()->status().sessions, 1u);
    second.terminate();
    std::filesystem::remove_all(dir);
}

TEST(IpcdSocketFile, RefusesWhenSomethingElseListens) {
    const std::string dir = make_temp_dir();
    const std::string path = dir + "/ipcd.sock";
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(fd, 1), 0);
    auto [rc, out] = run_ipcd({"--socket", path}, dir + "/out");
    EXPECT_EQ(rc, 1);
    EXPECT_NE(out.find("already listening on " + path), std::string::npos) << out;
    EXPECT_TRUE(std::filesystem::exists(path)) << "a live socket is never removed";
    ::close(fd);
    // A regular file in the way is not ours to delete.
    const std::string file = dir + "/file.sock";
    std::ofstream(file) << "x";
    auto [rc2, out2] = run_ipcd({"--socket", file}, dir + "/out2");
    EXPECT_EQ(rc2, 1);
    EXPECT_NE(out2.find("is not a socket"), std::string::npos) << out2;
    std::filesystem::remove_all(dir);
}

TEST(IpcdSocketFile, SocketActivationUsesThePassedSocket) {
    if (::access("/usr/bin/systemd-socket-activate", X_OK) != 0) GTEST_SKIP() << "no systemd-socket-activate";
    const std::string dir = make_temp_dir();
    const std::string path = dir + "/activated.sock", log = dir + "/log";
    const pid_t pid = spawn([&] {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::unsetenv("NOTIFY_SOCKET");
        // Listens on PATH, then on the first connection execs ipcd (same
        // pid) with the listening socket as fd 3 (LISTEN_FDS=1).
        ::execl("/usr/bin/systemd-socket-activate", "systemd-socket-activate", "-l", path.c_str(), IPCD_PATH,
                static_cast<char*>(nullptr));
        return 127;
    });
    ASSERT_TRUE(eventually([&] { return std::filesystem::exists(path); }));
    {
        auto s = Session::connect(path);
        auto st = s->status();
        EXPECT_EQ(st.pid, pid);
        auto sem = Semaphore::create(s, "activated", 1);
        EXPECT_FALSE(sem.acquire());
    }
    ::kill(pid, SIGTERM);
    EXPECT_EQ(wait_exit(pid), 0);
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_NE(text.str().find("listening on " + path), std::string::npos) << text.str();
    EXPECT_TRUE(std::filesystem::exists(path)) << "the activated socket belongs to the service manager";
    std::filesystem::remove_all(dir);
}

TEST(IpcdCommandLine, HelpVersionAndMisuse) {
    const std::string dir = make_temp_dir();
    auto [rc, out] = run_ipcd({"--help"}, dir + "/help");
    EXPECT_EQ(rc, 0);
    EXPECT_NE(out.find("--socket"), std::string::npos) << out;
    auto [vrc, vout] = run_ipcd({"--version"}, dir + "/version");
    EXPECT_EQ(vrc, 0);
    EXPECT_EQ(vout.rfind("ipcd ", 0), 0u) << vout;
    auto [brc, bout] = run_ipcd({"--no-such-option"}, dir + "/bad");
    EXPECT_NE(brc, 0);
    auto [nrc, nout] = run_ipcd({"--max-waits-per-user", "12x"}, dir + "/num");
    EXPECT_NE(nrc, 0) << "numbers are parsed strictly";
    auto [lrc, lout] = run_ipcd({"--socket", dir + "/" + std::string(120, 'x')}, dir + "/long");
    EXPECT_EQ(lrc, 1);
    EXPECT_NE(lout.find("<3>ipcd: "), std::string::npos) << "errors carry the syslog prefix: " << lout;
    std::filesystem::remove_all(dir);
}

// --- credentials and permissions -------------------------------------------------------

TEST_F(IpcdLife, PermissionsFollowTheModeBitsForOtherUsers) {
    auto priv = Semaphore::create(s, "priv", 1, 0600);
    auto readable = Semaphore::create(s, "readable", 1, 0604);
    auto shared = Semaphore::create(s, "shared", 1, 0606);
    ASSERT_FALSE(shared.acquire());  // so that the other user sees a holder
    const std::string sock = d.socket();
    const pid_t child = spawn([&] {
        become(nobody, nogroup);
        auto cs = Session::connect(sock);
        int failures = 0;
        auto expect = [&](std::error_code got, Result want, const char* what) {
            if (want == Result::ok ? bool(got) : got != code(want)) {
                std::fprintf(stderr, "%s: got '%s', want '%s'\n", what, got.message().c_str(),
                             ipc::proto::describe(want));
                ++failures;
            }
        };
        auto attempt = [&](auto&& f) {
            try {
                f();
                return std::error_code{};
            } catch (const std::system_error& e) {
                return e.code();
            }
        };
        expect(attempt([&] { Semaphore::open(cs, "priv"); }), Result::permission_denied, "open 0600");
        auto r = Semaphore::open(cs, "readable");
        expect(attempt([&] { r.stat(); }), Result::ok, "stat 0604");
        expect(r.try_acquire(), Result::permission_denied, "acquire 0604");
        auto w = Semaphore::open(cs, "shared");
        expect(w.try_acquire(), Result::would_block, "acquire 0606");
        auto info = w.stat();
        if (info.holders.size() != 1 || info.holders[0].uid != 0) ++failures;
        expect(attempt([&] { Semaphore::remove(*cs, "shared"); }), Result::permission_denied, "remove");
        // Its own semaphore is owned by it.
        auto mine = Semaphore::create(cs, "nobodys", 2, 0600);
        if (mine.stat().owner != nobody || mine.stat().group != nogroup) ++failures;
        return failures;
    });
    EXPECT_EQ(wait_exit(child), 0);
    auto info = s->stat("nobodys");
    EXPECT_EQ(info.owner, nobody) << "the owner comes from SO_PEERCRED";
    EXPECT_EQ(info.mode, 0600u);
    Semaphore::remove(*s, "nobodys");  // root may remove anything
}

TEST_F(IpcdLife, GroupClassUsesSupplementaryGroups) {
    // Owned by uid 1234, group 4242: created by a process with those ids.
    const std::string sock = d.socket();
    const pid_t creator = spawn([&] {
        become(1234, 4242);
        auto cs = Session::connect(sock);
        Semaphore::create(cs, "grp", 1, 0660);
        ::pause();
        return 0;
    });
    ASSERT_TRUE(eventually([&] { return s->list().size() == 1; }));
    const pid_t member = spawn([&] {
        become(5678, 100, {4242});
        auto cs = Session::connect(sock);
        auto g = Semaphore::open(cs, "grp");
        return g.try_acquire() ? 1 : 0;
    });
    const pid_t stranger = spawn([&] {
        become(5679, 100);
        auto cs = Session::connect(sock);
        try {
            Semaphore::open(cs, "grp");
        } catch (const std::system_error& e) {
            return e.code() == code(Result::permission_denied) ? 0 : 2;
        }
        return 1;
    });
    EXPECT_EQ(wait_exit(member), 0);
    EXPECT_EQ(wait_exit(stranger), 0);
    kill9(creator);
}

// --- per-user limits ---------------------------------------------------------------------

TEST(IpcdLimits, PerUserSessionsSemaphoresAndWaits) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop to another uid";
    Daemon d({"--max-sessions-per-user", "3", "--max-semaphores-per-user", "2", "--max-waits-per-user", "1"});
    auto root = d.connect();
    auto rsem = Semaphore::create(root, "busy", 1, 0666);
    ASSERT_FALSE(rsem.acquire());
    const std::string sock = d.socket();
    const pid_t child = spawn([&] {
        become(nobody, nogroup);
        int failures = 0;
        std::vector<std::shared_ptr<Session>> ss;
        for (int i = 0; i < 3; ++i) ss.push_back(Session::connect(sock));
        try {
            Session::connect(sock);
            ++failures;
        } catch (const std::system_error& e) {
            if (e.code() != code(Result::limit)) ++failures;
            if (std::string(e.what()).find("refused") == std::string::npos) ++failures;
        }
        ss.pop_back();  // one session ends: a new one fits again
        bool connected = false;
        for (int i = 0; i < 1000 && !connected; ++i) {
            try {
                ss.push_back(Session::connect(sock));
                connected = true;
            } catch (const std::system_error&) {
                std::this_thread::sleep_for(1ms);  // until the daemon has seen the hang-up
            }
        }
        if (!connected) ++failures;
        auto a = Semaphore::create(ss[0], "n1", 1);
        auto b = Semaphore::create(ss[0], "n2", 1);
        try {
            Semaphore::create(ss[0], "n3", 1);
            ++failures;
        } catch (const std::system_error& e) {
            if (e.code() != code(Result::limit)) ++failures;
        }
        auto w1 = Semaphore::open(ss[0], "busy");
        auto w2 = Semaphore::open(ss[1], "busy");
        auto pending = std::async(std::launch::async, [&] { return w1.acquire(); });
        while (w1.stat(false).waiter_count != 1) std::this_thread::sleep_for(1ms);
        if (w2.acquire_for(1, 10s) != code(Result::limit)) ++failures;
        // Exit without unwinding (the pending acquire never returns); the
        // session's end cancels the wait.
        std::fflush(nullptr);
        ::_exit(failures);
        return failures;
    });
    EXPECT_EQ(wait_exit(child), 0);
    EXPECT_NE(d.log().find("refusing sessions of uid 65534"), std::string::npos) << d.log();
    // Root is not limited.
    std::vector<std::shared_ptr<Session>> many;
    for (int i = 0; i < 5; ++i) many.push_back(d.connect());
    ASSERT_TRUE(eventually([&] { return root->status().sessions == 6; }));
}

// --- persistent semaphores ---------------------------------------------------------------

TEST(IpcdState, PersistentSemaphoresSurviveARestartWithLargerTokens) {
    const std::string dir = make_temp_dir();
    const std::string state_dir = dir + "/state";
    const std::string state = state_dir + "/semaphores.json";
    std::uint64_t token = 0;
    {
        Daemon d({"--state-dir", state_dir}, dir);
        auto s = d.connect();
        auto keep = Semaphore::create(s, "keep", 3, 0640, /*persist=*/true);
        auto temp = Semaphore::create(s, "temp", 1);
        ASSERT_FALSE(keep.acquire(2));
        token = keep.fencing_token();
        EXPECT_TRUE(keep.stat().persistent);
        EXPECT_EQ(d.terminate(), 0);
    }
    struct stat st {};
    ASSERT_EQ(::stat(state.c_str(), &st), 0) << "ipcd creates the state directory and its file";
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_FALSE(std::filesystem::exists(state + ".tmp")) << "the temporary file is renamed over the state file";
    Daemon d({"--state-dir", state_dir}, dir);
    auto s = d.connect();
    auto all = s->list();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].name, "keep");
    auto keep = Semaphore::open(s, "keep");
    auto info = keep.stat();
    EXPECT_EQ(info.permits, 3u);
    EXPECT_EQ(info.available, 3u) << "holders do not survive a restart";
    EXPECT_EQ(info.mode, 0640u);
    EXPECT_TRUE(info.persistent);
    ASSERT_FALSE(keep.acquire());
    EXPECT_GT(keep.fencing_token(), token);
    Semaphore::remove(*s, "keep");
    d.terminate();
    std::ifstream in(state);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str().find("keep"), std::string::npos) << "removal is saved too";
    std::filesystem::remove_all(dir);
}

// A corrupt or truncated state file is reported and moved aside, never
// dropped in silence and never a reason not to start.
TEST(IpcdState, CorruptStateFileIsMovedAsideAndIpcdStarts) {
    const std::string dir = make_temp_dir();
    const std::string state_dir = dir + "/state";
    const std::string state = state_dir + "/semaphores.json";
    std::string good;
    {
        Daemon d({"--state-dir", state_dir}, dir);
        auto s = d.connect();
        Semaphore::create(s, "a", 2, 0600, /*persist=*/true);
        Semaphore::create(s, "b", 5, 0600, /*persist=*/true);
        EXPECT_EQ(d.terminate(), 0);
        std::ifstream in(state);
        std::stringstream text;
        text << in.rdbuf();
        good = text.str();
    }
    ASSERT_NE(good.find("\"b\""), std::string::npos) << good;
    const auto corrupt_copies = [&] {
        std::vector<std::string> found;
        for (const auto& e : std::filesystem::directory_iterator(state_dir))
            if (e.path().filename().string().rfind("semaphores.json.corrupt-", 0) == 0) found.push_back(e.path());
        return found;
    };
    const std::vector<std::string> bad_contents = {
        good.substr(0, good.size() / 2),  // truncated mid-write
        "",                               // empty
        "{ not json",
        R"({"format": "ipcd-state", "version": 99, "semaphores": []})",
        R"({"format": "ipcd-state", "version": 1, "semaphores": [{"name": "../x", "permits": 1}]})",
        // Numbers nlohmann would wrap or truncate without a word:
        R"({"format": "ipcd-state", "version": 1, "semaphores": [{"name": "t", "permits": 1, "owner": 0,
            "group": 0, "mode": 384, "token": -1}]})",
        R"({"format": "ipcd-state", "version": 1, "semaphores": [{"name": "p", "permits": 4294967297, "owner": 0,
            "group": 0, "mode": 384, "token": 5}]})",
        R"({"format": "ipcd-state", "version": 1, "semaphores": [{"name": "m", "permits": 1.5, "owner": 0,
            "group": 0, "mode": 384, "token": 5}]})",
    };
    for (std::size_t i = 0; i < bad_contents.size(); ++i) {
        SCOPED_TRACE("bad state #" + std::to_string(i));
        for (const auto& f : corrupt_copies()) std::filesystem::remove(f);
        std::ofstream(state, std::ios::trunc) << bad_contents[i];
        Daemon d({"--state-dir", state_dir}, dir);
        auto s = d.connect();
        EXPECT_TRUE(s->list().empty()) << "nothing is restored from a corrupt file";
        const auto copies = corrupt_copies();
        ASSERT_EQ(copies.size(), 1u) << d.log();
        std::ifstream in(copies[0]);
        std::stringstream text;
        text << in.rdbuf();
        EXPECT_EQ(text.str(), bad_contents[i]) << "the corrupt file is kept byte for byte";
        EXPECT_FALSE(std::filesystem::exists(state)) << "nothing replaced it yet";
        EXPECT_NE(d.log().find("corrupt"), std::string::npos) << d.log();
        EXPECT_NE(d.log().find("moved it aside"), std::string::npos) << d.log();
        // And the daemon persists again from scratch, with fencing tokens
        // above any the lost file could have reserved (wall-clock us).
        auto fresh = Semaphore::create(s, "fresh", 1, 0600, /*persist=*/true);
        ASSERT_FALSE(fresh.acquire());
        const auto floor_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::system_clock::now().time_since_epoch() - std::chrono::hours(1))
                                  .count();
        EXPECT_GT(fresh.fencing_token(), static_cast<std::uint64_t>(floor_us));
        EXPECT_EQ(d.terminate(), 0);
        ASSERT_TRUE(std::filesystem::exists(state));
        std::filesystem::remove(state);
    }
    std::filesystem::remove_all(dir);
}

TEST(IpcdState, UnwritableStateDirectoryStopsTheStartWithAReason) {
    const std::string dir = make_temp_dir();
    std::ofstream(dir + "/file") << "x";
    auto [rc, out] = run_ipcd({"--socket", dir + "/x.sock", "--config", "/dev/null", "--state-dir", dir + "/file/sub"},
                              dir + "/bad.out");
    EXPECT_EQ(rc, 1);
    EXPECT_NE(out.find("cannot create state directory"), std::string::npos) << out;
    EXPECT_NE(out.find("--state-dir"), std::string::npos) << out;
    std::filesystem::remove_all(dir);
}

}  // namespace
