// ipcd end to end with a configuration file: declared semaphores at start,
// refusal of a bad file (at start: exit 1 with FILE:LINE; on reload: the
// running configuration stays), SIGHUP and Op::reload, declared permits
// changed while held, every per-user limit and a per-user exception, the
// create policy, and the state directory.
//
// The limit and policy tests fork clients that drop to test uids (so they
// need root, as CI runs them); the uids need no account: ipcd sees only
// SO_PEERCRED.
#include <grp.h>

#include <future>

#include "daemon_harness.hpp"

namespace {

using namespace ipcd_test;
using ipc::Semaphore;
using ipc::Session;

constexpr uid_t alice = 4001;  // the client a limit applies to
constexpr uid_t bob = 4002;    // another uid, which must not notice
constexpr uid_t carol = 4003;
constexpr gid_t admins = 4500;

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + path);
}

std::size_t count(const std::string& haystack, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
    return n;
}

// In a forked child: become `uid` (group `gid`) for good.
void become(uid_t uid, gid_t gid, std::vector<gid_t> groups = {}) {
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)
        throw std::runtime_error("cannot drop privileges");
}

// What a setup call threw (or no error).
template <class F>
std::error_code attempt(F&& f) {
    try {
        f();
        return {};
    } catch (const std::system_error& e) {
        return e.code();
    }
}

// Failed checks of a forked client, reported on stderr; the count is its
// exit status.
struct Checks {
    int failures = 0;
    void expect(std::error_code got, Result want, const char* what) {
        if (want == Result::ok ? !got : got == code(want)) return;
        std::fprintf(stderr, "uid %u: %s: got '%s', want '%s'\n", ::getuid(), what, got.message().c_str(),
                     ipc::proto::describe(want));
        ++failures;
    }
    void expect(bool ok, const char* what) {
        if (ok) return;
        std::fprintf(stderr, "uid %u: %s\n", ::getuid(), what);
        ++failures;
    }
};

// A directory with ipcd.conf in it; the daemon's socket and state go there too.
class ConfigDir {
public:
    ConfigDir() : dir_(make_temp_dir()), path_(dir_ + "/ipcd.conf") {}
    ~ConfigDir() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    ConfigDir(const ConfigDir&) = delete;
    ConfigDir& operator=(const ConfigDir&) = delete;
    const std::string& dir() const { return dir_; }
    const std::string& path() const { return path_; }
    void write(const std::string& text) const { write_file(path_, text); }

private:
    std::string dir_, path_;
};

class IpcdConfig : public ::testing::Test {
protected:
    // Writes `text` as the configuration and starts ipcd on it.
    Daemon& start(const std::string& text, std::vector<std::string> args = {}) {
        cfg.write(text);
        args.insert(args.begin(), {"--config", cfg.path()});
        d.emplace(std::move(args), cfg.dir());
        s = d->connect();
        return *d;
    }
    // Replaces the configuration and makes ipcd re-read it (Op::reload).
    std::uint32_t reload(const std::string& text) {
        cfg.write(text);
        return s->reload();
    }
    // Replaces the configuration, sends SIGHUP and waits until the reload
    // was logged (done or refused).
    void sighup(const std::string& text) {
        cfg.write(text);
        const std::string log = d->log();
        const std::size_t before = count(log, "configuration reloaded") + count(log, "reload refused");
        ::kill(d->pid(), SIGHUP);
        ASSERT_TRUE(eventually([&] {
            const std::string l = d->log();
            return count(l, "configuration reloaded") + count(l, "reload refused") > before;
        })) << d->log();
    }
    static void need_root() {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop to other uids";
    }

    ConfigDir cfg;  // outlives the daemon: its directory holds the socket
    std::optional<Daemon> d;
    std::shared_ptr<Session> s;
};

// --- start -------------------------------------------------------------------------

TEST_F(IpcdConfig, DeclaredSemaphoresExistAtStartWithTheirAttributes) {
    start(R"(
[[semaphore]]
name = "db-writers"
permits = 3
owner = 1234
group = "4321"
mode = "0640"

[[semaphore]]
name = "plain"
permits = 1
)");
    auto list = s->list();
    ASSERT_EQ(list.size(), 2u);
    auto db = s->stat("db-writers");
    EXPECT_EQ(db.permits, 3u);
    EXPECT_EQ(db.available, 3u);
    EXPECT_EQ(db.owner, 1234u);
    EXPECT_EQ(db.group, 4321u);
    EXPECT_EQ(db.mode, 0640u);
    EXPECT_TRUE(db.declared);
    EXPECT_TRUE(db.persistent) << "declared semaphores are persistent";
    auto plain = s->stat("plain");
    EXPECT_EQ(plain.permits, 1u);
    EXPECT_EQ(plain.owner, 0u) << "default owner: root";
    EXPECT_EQ(plain.group, 0u);
    EXPECT_EQ(plain.mode, 0600u) << "default mode";
    EXPECT_TRUE(plain.declared);
    // Not even root deletes a declared semaphore: the file owns it.
    EXPECT_EQ(attempt([&] { Semaphore::remove(*s, "db-writers"); }), code(Result::declared));
    EXPECT_EQ(s->list().size(), 2u);
    auto sem = Semaphore::open(s, "db-writers");
    EXPECT_FALSE(sem.acquire(3));
    EXPECT_EQ(sem.try_acquire(), code(Result::would_block));
}

TEST_F(IpcdConfig, DeclaredOwnerAndModeApplyToOtherUsers) {
    need_root();
    start("[[semaphore]]\nname = 'mine'\npermits = 1\nowner = 4001\nmode = '0600'\n");
    const std::string sock = d->socket();
    const auto as = [&](uid_t uid, Result want) {
        return wait_exit(spawn([&] {
            become(uid, uid);
            Checks c;
            auto cs = Session::connect(sock);
            c.expect(attempt([&] { Semaphore::open(cs, "mine"); }), want, "open a declared 0600 semaphore");
            return c.failures;
        }));
    };
    EXPECT_EQ(as(alice, Result::ok), 0) << "the declared owner may use it";
    EXPECT_EQ(as(bob, Result::permission_denied), 0) << "others may not";
}

TEST(IpcdConfigStart, BadFileStopsTheStartWithFileAndLine) {
    ConfigDir cfg;
    cfg.write("spin_us = 5\n\n[limits]\nsesions_per_user = 3\n");
    const std::vector<std::string> base{"--socket", cfg.dir() + "/ipcd.sock", "--state-dir", cfg.dir() + "/state"};
    auto args = base;
    args.insert(args.end(), {"--config", cfg.path()});
    auto [rc, out] = run_ipcd(args, cfg.dir() + "/out");
    EXPECT_EQ(rc, 1);
    EXPECT_NE(out.find("<3>ipcd: " + cfg.path() + ":4:1: unknown key 'sesions_per_user' in [limits]"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("did you mean sessions_per_user?"), std::string::npos) << out;
    EXPECT_FALSE(std::filesystem::exists(cfg.dir() + "/ipcd.sock")) << "nothing was started";

    cfg.write("[[semaphore]]\nname = 'x'\n");  // no permits
    auto [rc2, out2] = run_ipcd(args, cfg.dir() + "/out2");
    EXPECT_EQ(rc2, 1);
    EXPECT_NE(out2.find(cfg.path() + ":1:"), std::string::npos) << out2;
    EXPECT_NE(out2.find("has no 'permits'"), std::string::npos) << out2;

    // A file named with --config must exist; the default one may be missing.
    args = base;
    args.insert(args.end(), {"--config", cfg.dir() + "/missing.conf"});
    auto [rc3, out3] = run_ipcd(args, cfg.dir() + "/out3");
    EXPECT_EQ(rc3, 1);
    EXPECT_NE(out3.find(cfg.dir() + "/missing.conf: cannot read: No such file or directory"), std::string::npos)
        << out3;
}

TEST_F(IpcdConfig, EmptyFileIsTheDefaults) {
    start("");
    EXPECT_TRUE(s->list().empty());
    const auto u = s->usage(alice);
    EXPECT_EQ(u.sessions.limit, 64u);
    EXPECT_EQ(u.semaphores.limit, 256u);
    EXPECT_EQ(u.waits.limit, 1024u);
    EXPECT_EQ(u.handles_per_session, 4096u);
    EXPECT_TRUE(u.may_create);
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream t;
    t << in.rdbuf();
    return t.str();
}

// ipcd started with --config alone (no --socket, no --state-dir, no
// readiness socket), so that the file's socket and state_dir apply.
class BareIpcd {
public:
    BareIpcd(const ConfigDir& cfg, const std::string& sock) : log_(cfg.dir() + "/bare.log") {
        const std::string config = cfg.path(), log = log_;
        pid_ = spawn([&] {
            const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(fd, 2);
            ::unsetenv("NOTIFY_SOCKET");
            ::unsetenv("IPCD_SOCKET");
            ::execl(IPCD_PATH, "ipcd", "--config", config.c_str(), static_cast<char*>(nullptr));
            return 127;
        });
        eventually([&] {
            try {
                session = Session::connect(sock);
                return true;
            } catch (const std::system_error&) {
                return false;
            }
        });
    }
    ~BareIpcd() {
        if (pid_ > 0) kill9(pid_);
    }
    BareIpcd(const BareIpcd&) = delete;
    BareIpcd& operator=(const BareIpcd&) = delete;
    std::string log() const { return read_text(log_); }
    int terminate() {
        ::kill(pid_, SIGTERM);
        const int rc = wait_exit(pid_);
        pid_ = -1;
        return rc;
    }

    std::shared_ptr<Session> session;  // null if ipcd never answered

private:
    std::string log_;
    pid_t pid_ = -1;
};

TEST(IpcdConfigStart, SocketAndStateDirComeFromTheFile) {
    ConfigDir cfg;
    const std::string sock = cfg.dir() + "/from-file.sock", state = cfg.dir() + "/from-file-state";
    cfg.write("socket = '" + sock + "'\nstate_dir = '" + state + "'\n");
    BareIpcd d(cfg, sock);
    ASSERT_TRUE(d.session) << d.log();
    auto& s = d.session;
    Semaphore::create(s, "kept", 2, 0600, /*persist=*/true);
    ASSERT_TRUE(eventually([&] { return read_text(state + "/semaphores.json").find("kept") != std::string::npos; }))
        << d.log();

    // A new state_dir needs a restart: logged, and the old one kept.
    cfg.write("socket = '" + sock + "'\nstate_dir = '" + cfg.dir() + "/other-state'\n");
    EXPECT_EQ(s->reload(), 0u);
    EXPECT_NE(d.log().find("'state_dir' changed to '" + cfg.dir() + "/other-state'; ipcd keeps " + state +
                           " until it is restarted"),
              std::string::npos)
        << d.log();
    Semaphore::create(s, "kept2", 1, 0600, /*persist=*/true);
    EXPECT_TRUE(eventually([&] { return read_text(state + "/semaphores.json").find("kept2") != std::string::npos; }))
        << "still saved in the old directory";
    EXPECT_FALSE(std::filesystem::exists(cfg.dir() + "/other-state"));
    s.reset();
    EXPECT_EQ(d.terminate(), 0);
}

TEST(IpcdConfigStart, ReloadLogsThatANewSocketNeedsARestart) {
    ConfigDir cfg;
    const std::string sock = cfg.dir() + "/from-file.sock", other = cfg.dir() + "/other.sock";
    cfg.write("socket = '" + sock + "'\nstate_dir = '" + cfg.dir() + "/state'\n");
    BareIpcd d(cfg, sock);
    ASSERT_TRUE(d.session) << d.log();
    cfg.write("socket = '" + other + "'\nstate_dir = '" + cfg.dir() + "/state'\n");
    EXPECT_EQ(d.session->reload(), 0u);
    EXPECT_NE(d.log().find("'socket' changed to '" + other + "'; ipcd keeps " + sock + " until it is restarted"),
              std::string::npos)
        << d.log();
    EXPECT_EQ(d.session->status().sessions, 1u) << "still serving on the old socket";
    EXPECT_FALSE(std::filesystem::exists(other));
    d.session.reset();
    EXPECT_EQ(d.terminate(), 0);
}

// --- reload ----------------------------------------------------------------------------

TEST_F(IpcdConfig, SighupAddsANewDeclaredSemaphore) {
    start("[[semaphore]]\nname = 'first'\npermits = 1\n");
    ASSERT_EQ(s->list().size(), 1u);
    sighup("[[semaphore]]\nname = 'first'\npermits = 1\n\n[[semaphore]]\nname = 'second'\npermits = 4\n"
           "mode = 0o644\n");
    auto info = s->stat("second");
    EXPECT_EQ(info.permits, 4u);
    EXPECT_EQ(info.mode, 0644u);
    EXPECT_TRUE(info.declared);
    EXPECT_NE(d->log().find("declared semaphores created: second"), std::string::npos) << d->log();
    EXPECT_NE(d->log().find("configuration reloaded: 2 declared semaphores"), std::string::npos) << d->log();
}

TEST_F(IpcdConfig, SighupWithABrokenFileKeepsTheRunningConfiguration) {
    start("[limits]\nsemaphores_per_user = 7\n\n[[semaphore]]\nname = 'kept'\npermits = 2\n");
    sighup("[limits]\nsemaphores_per_user = 9\n\n[[semaphore]]\nname = 'kept'\npermits = 'two'\n");
    const std::string log = d->log();
    EXPECT_NE(log.find("reload refused: " + cfg.path() + ":6:11: 'permits' in [[semaphore]] #1 must be an integer"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("the running configuration stays in effect"), std::string::npos) << log;
    // Still serving, with the old configuration.
    EXPECT_EQ(s->status().sessions, 1u);
    auto kept = s->stat("kept");
    EXPECT_EQ(kept.permits, 2u);
    EXPECT_TRUE(kept.declared);
    EXPECT_EQ(s->usage(alice).semaphores.limit, 7u) << "the limits were not half-applied";
    auto sem = Semaphore::open(s, "kept");
    EXPECT_FALSE(sem.acquire(2));
    EXPECT_FALSE(sem.release(2));
    // The request form says so too; a fixed file is then taken.
    cfg.write("[limits]\nsemaphores_per_user = 9\n[[semaphore]]\nname = 'kept'\npermits = 2\nowner = '");
    EXPECT_EQ(attempt([&] { s->reload(); }), code(Result::bad_config));
    EXPECT_EQ(reload("[limits]\nsemaphores_per_user = 9\n[[semaphore]]\nname = 'kept'\npermits = 2\n"), 1u);
    EXPECT_EQ(s->usage(alice).semaphores.limit, 9u);
}

TEST_F(IpcdConfig, ReloadRequestNeedsRoot) {
    need_root();
    start("");
    const std::string sock = d->socket();
    EXPECT_EQ(wait_exit(spawn([&] {
                  become(alice, alice);
                  Checks c;
                  auto cs = Session::connect(sock);
                  c.expect(attempt([&] { cs->reload(); }), Result::permission_denied, "reload as non-root");
                  return c.failures;
              })),
              0);
    EXPECT_EQ(count(d->log(), "reloading the configuration"), 0u);
}

TEST_F(IpcdConfig, UndeclaredSemaphoreStaysAsAnOrdinaryPersistentOne) {
    start("[[semaphore]]\nname = 'gone'\npermits = 2\n");
    auto sem = Semaphore::open(s, "gone");
    ASSERT_FALSE(sem.acquire());
    EXPECT_EQ(reload(""), 0u);
    auto info = s->stat("gone");
    EXPECT_FALSE(info.declared);
    EXPECT_TRUE(info.persistent);
    EXPECT_EQ(info.holder_count, 1u) << "holders keep their permits";
    ASSERT_FALSE(sem.release());
    sem = Semaphore{};
    Semaphore::remove(*s, "gone");  // an ordinary semaphore now: deletable
    EXPECT_TRUE(s->list().empty());
}

// Lowering a declared semaphore's permits while they are held takes nothing
// away, and grants nothing until the holders are below the new count.
TEST_F(IpcdConfig, LoweringPermitsWhileHeldGrantsNothingUntilBelowTheNewCount) {
    start("[[semaphore]]\nname = 'db'\npermits = 3\nmode = '0666'\n");
    std::vector<std::shared_ptr<Session>> hs;
    std::vector<Semaphore> holders;
    for (int i = 0; i < 3; ++i) {
        hs.push_back(d->connect());
        holders.push_back(Semaphore::open(hs.back(), "db"));
        ASSERT_FALSE(holders.back().acquire());
    }
    EXPECT_EQ(reload("[[semaphore]]\nname = 'db'\npermits = 1\nmode = '0666'\n"), 1u);
    auto info = s->stat("db");
    EXPECT_EQ(info.permits, 1u);
    EXPECT_EQ(info.available, 0u);
    EXPECT_EQ(info.holder_count, 3u) << "nothing is taken from the holders";

    auto ws1 = d->connect(), ws2 = d->connect();
    auto w1 = Semaphore::open(ws1, "db"), w2 = Semaphore::open(ws2, "db");
    auto first = std::async(std::launch::async, [&] { return w1.acquire_for(1, 20s); });
    ASSERT_TRUE(eventually([&] { return s->stat("db", false).waiter_count == 1; }));
    // A release answers after any grant it caused, so the stat after it is exact.
    ASSERT_FALSE(holders[0].release());
    info = s->stat("db", false);
    EXPECT_EQ(info.holder_count, 2u);
    EXPECT_EQ(info.waiter_count, 1u) << "2 held >= 1 permit: no grant";
    ASSERT_FALSE(holders[1].release());
    info = s->stat("db", false);
    EXPECT_EQ(info.holder_count, 1u);
    EXPECT_EQ(info.waiter_count, 1u) << "1 held >= 1 permit: no grant";
    EXPECT_EQ(first.wait_for(0s), std::future_status::timeout);
    ASSERT_FALSE(holders[2].release());
    EXPECT_FALSE(first.get()) << "granted once nothing was held";

    // From now on exactly one holder at a time.
    auto second = std::async(std::launch::async, [&] { return w2.acquire_for(1, 20s); });
    ASSERT_TRUE(eventually([&] { return s->stat("db", false).waiter_count == 1; }));
    EXPECT_EQ(holders[0].try_acquire(), code(Result::would_block));
    info = s->stat("db", true);
    ASSERT_EQ(info.holders.size(), 1u);
    EXPECT_EQ(info.holders[0].session, ws1->id());
    ASSERT_FALSE(w1.release());
    EXPECT_FALSE(second.get());
    info = s->stat("db", true);
    ASSERT_EQ(info.holders.size(), 1u);
    EXPECT_EQ(info.holders[0].session, ws2->id());
    EXPECT_EQ(info.available, 0u);
}

TEST_F(IpcdConfig, RaisingPermitsGrantsWaiters) {
    start("[[semaphore]]\nname = 'db'\npermits = 1\n");
    auto sem = Semaphore::open(s, "db");
    ASSERT_FALSE(sem.acquire());
    auto ws1 = d->connect(), ws2 = d->connect(), ws3 = d->connect();
    auto w1 = Semaphore::open(ws1, "db"), w2 = Semaphore::open(ws2, "db"), w3 = Semaphore::open(ws3, "db");
    auto a1 = std::async(std::launch::async, [&] { return w1.acquire_for(1, 20s); });
    ASSERT_TRUE(eventually([&] { return s->stat("db", false).waiter_count == 1; }));
    auto a2 = std::async(std::launch::async, [&] { return w2.acquire_for(1, 20s); });
    ASSERT_TRUE(eventually([&] { return s->stat("db", false).waiter_count == 2; }));
    auto a3 = std::async(std::launch::async, [&] { return w3.acquire_for(1, 20s); });
    ASSERT_TRUE(eventually([&] { return s->stat("db", false).waiter_count == 3; }));
    EXPECT_EQ(reload("[[semaphore]]\nname = 'db'\npermits = 3\n"), 1u);
    EXPECT_FALSE(a1.get());
    EXPECT_FALSE(a2.get());
    // 3 held of 3: the last waiter still waits, first in line.
    auto info = s->stat("db", false);
    EXPECT_EQ(info.permits, 3u);
    EXPECT_EQ(info.available, 0u);
    EXPECT_EQ(info.holder_count, 3u);
    EXPECT_EQ(info.waiter_count, 1u);
    EXPECT_EQ(a3.wait_for(0s), std::future_status::timeout);
    ASSERT_FALSE(sem.release());
    EXPECT_FALSE(a3.get());
}

// --- per-user limits -----------------------------------------------------------------

TEST_F(IpcdConfig, SessionsPerUser) {
    need_root();
    start("[limits]\nsessions_per_user = 2\n");
    const std::string sock = d->socket();
    Pipe full, done;
    const pid_t a = spawn([&] {
        become(alice, alice);
        Checks c;
        auto s1 = Session::connect(sock), s2 = Session::connect(sock);
        c.expect(attempt([&] { Session::connect(sock); }), Result::limit, "third session");
        full.put();
        (void)done.get(20s);  // keep both sessions while bob connects
        return c.failures;
    });
    ASSERT_TRUE(full.get(20s));
    const pid_t b = spawn([&] {
        become(bob, bob);
        Checks c;
        std::shared_ptr<Session> s1, s2;
        c.expect(attempt([&] { s1 = Session::connect(sock); }), Result::ok, "bob's first session");
        c.expect(attempt([&] { s2 = Session::connect(sock); }), Result::ok, "bob's second session");
        return c.failures;
    });
    EXPECT_EQ(wait_exit(b), 0) << "another uid does not notice";
    done.put();
    EXPECT_EQ(wait_exit(a), 0);
    EXPECT_NE(d->log().find("refusing sessions of uid 4001"), std::string::npos) << d->log();
}

TEST_F(IpcdConfig, SemaphoresPerUser) {
    need_root();
    start("[limits]\nsemaphores_per_user = 1\n");
    const std::string sock = d->socket();
    const auto creator = [&](uid_t uid, const char* n1, const char* n2) {
        return spawn([=] {
            become(uid, uid);
            Checks c;
            auto cs = Session::connect(sock);
            c.expect(attempt([&] { Semaphore::create(cs, n1, 1); }), Result::ok, "first semaphore");
            c.expect(attempt([&] { Semaphore::create(cs, n2, 1); }), Result::limit, "second semaphore");
            return c.failures;
        });
    };
    EXPECT_EQ(wait_exit(creator(alice, "a1", "a2")), 0);
    // alice's semaphore is still there (not persistent, but she created it,
    // and semaphores outlive their creator's session); bob has his own count.
    EXPECT_EQ(wait_exit(creator(bob, "b1", "b2")), 0);
    EXPECT_EQ(s->list().size(), 2u);
    EXPECT_EQ(s->usage(alice).semaphores.used, 1u);
    EXPECT_EQ(s->usage(bob).semaphores.used, 1u);
}

TEST_F(IpcdConfig, WaitsPerUser) {
    need_root();
    start("[limits]\nwaits_per_user = 1\n\n[[semaphore]]\nname = 'busy'\npermits = 1\nmode = '0666'\n");
    auto busy = Semaphore::open(s, "busy");
    ASSERT_FALSE(busy.acquire());
    const std::string sock = d->socket();
    Pipe waiting, done;
    const pid_t a = spawn([&] {
        become(alice, alice);
        Checks c;
        auto s1 = Session::connect(sock), s2 = Session::connect(sock);
        auto w1 = Semaphore::open(s1, "busy"), w2 = Semaphore::open(s2, "busy");
        auto pending = std::async(std::launch::async, [&] { return w1.acquire_for(1, 30s); });
        while (w2.stat(false).waiter_count != 1) std::this_thread::sleep_for(1ms);
        c.expect(w2.acquire_for(1, 10s), Result::limit, "second wait of alice");
        waiting.put();
        (void)done.get(20s);
        std::fflush(nullptr);
        ::_exit(c.failures);  // the pending acquire never returns: its session's end cancels it
        return c.failures;
    });
    ASSERT_TRUE(waiting.get(20s));
    const pid_t b = spawn([&] {
        become(bob, bob);
        Checks c;
        auto cs = Session::connect(sock);
        auto w = Semaphore::open(cs, "busy");
        c.expect(w.acquire_for(1, 100ms), Result::timed_out, "bob waits (and times out), no limit");
        return c.failures;
    });
    EXPECT_EQ(wait_exit(b), 0);
    done.put();
    EXPECT_EQ(wait_exit(a), 0);
}

TEST_F(IpcdConfig, HandlesPerSession) {
    need_root();
    start("[limits]\nhandles_per_session = 2\n\n"
          "[[semaphore]]\nname = 'h1'\npermits = 1\nmode = '0666'\n"
          "[[semaphore]]\nname = 'h2'\npermits = 1\nmode = '0666'\n"
          "[[semaphore]]\nname = 'h3'\npermits = 1\nmode = '0666'\n");
    const std::string sock = d->socket();
    Pipe full, done;
    const pid_t a = spawn([&] {
        become(alice, alice);
        Checks c;
        auto cs = Session::connect(sock);
        auto o1 = Semaphore::open(cs, "h1"), o2 = Semaphore::open(cs, "h2");
        c.expect(attempt([&] { Semaphore::open(cs, "h3"); }), Result::limit, "third handle");
        c.expect(attempt([&] { Semaphore::create(cs, "new", 1); }), Result::limit, "create needs a handle too");
        auto other = Session::connect(sock);
        c.expect(attempt([&] { Semaphore::open(other, "h3"); }), Result::ok, "a limit per session, not per user");
        full.put();
        (void)done.get(20s);
        return c.failures;
    });
    ASSERT_TRUE(full.get(20s));
    const pid_t b = spawn([&] {
        become(bob, bob);
        Checks c;
        auto cs = Session::connect(sock);
        c.expect(attempt([&] { Semaphore::open(cs, "h1"); }), Result::ok, "bob's first handle");
        c.expect(attempt([&] { Semaphore::open(cs, "h2"); }), Result::ok, "bob's second handle");
        return c.failures;
    });
    EXPECT_EQ(wait_exit(b), 0);
    done.put();
    EXPECT_EQ(wait_exit(a), 0);
}

TEST_F(IpcdConfig, PerUserExceptionOverridesTheDefault) {
    need_root();
    start("[limits]\nsessions_per_user = 1\nsemaphores_per_user = 1\n\n"
          "[limits.user.4001]\nsessions = 3\nsemaphores = 2\n");
    EXPECT_EQ(s->usage(alice).sessions.limit, 3u);
    EXPECT_EQ(s->usage(alice).semaphores.limit, 2u);
    EXPECT_EQ(s->usage(bob).sessions.limit, 1u);
    const std::string sock = d->socket();
    const pid_t a = spawn([&] {
        become(alice, alice);
        Checks c;
        std::vector<std::shared_ptr<Session>> ss;
        for (int i = 0; i < 3; ++i)
            c.expect(attempt([&] { ss.push_back(Session::connect(sock)); }), Result::ok, "alice's sessions 1-3");
        c.expect(attempt([&] { Session::connect(sock); }), Result::limit, "alice's fourth session");
        if (ss.empty()) return c.failures + 1;
        c.expect(attempt([&] { Semaphore::create(ss[0], "a1", 1); }), Result::ok, "alice's first semaphore");
        c.expect(attempt([&] { Semaphore::create(ss[0], "a2", 1); }), Result::ok, "alice's second semaphore");
        c.expect(attempt([&] { Semaphore::create(ss[0], "a3", 1); }), Result::limit, "alice's third semaphore");
        return c.failures;
    });
    EXPECT_EQ(wait_exit(a), 0);
    const pid_t b = spawn([&] {
        become(bob, bob);
        Checks c;
        auto s1 = Session::connect(sock);
        c.expect(attempt([&] { Session::connect(sock); }), Result::limit, "bob's second session (the default)");
        c.expect(attempt([&] { Semaphore::create(s1, "b1", 1); }), Result::ok, "bob's first semaphore");
        c.expect(attempt([&] { Semaphore::create(s1, "b2", 1); }), Result::limit, "bob's second semaphore");
        return c.failures;
    });
    EXPECT_EQ(wait_exit(b), 0);
}

TEST_F(IpcdConfig, ReloadChangesLimits) {
    need_root();
    start("[limits]\nsemaphores_per_user = 1\n");
    const std::string sock = d->socket();
    const auto create_as_alice = [&](const char* name, Result want) {
        return wait_exit(spawn([=] {
            become(alice, alice);
            Checks c;
            auto cs = Session::connect(sock);
            c.expect(attempt([&] { Semaphore::create(cs, name, 1); }), want, name);
            return c.failures;
        }));
    };
    EXPECT_EQ(create_as_alice("one", Result::ok), 0);
    EXPECT_EQ(create_as_alice("two", Result::limit), 0);
    reload("[limits]\nsemaphores_per_user = 2\n");
    EXPECT_EQ(create_as_alice("two", Result::ok), 0);
    EXPECT_EQ(create_as_alice("three", Result::limit), 0);
    // Lowered below what alice has: she keeps both, and gets no more.
    reload("[limits]\nsemaphores_per_user = 1\n");
    EXPECT_EQ(s->usage(alice).semaphores.used, 2u);
    EXPECT_EQ(create_as_alice("three", Result::limit), 0);
}

// --- the create policy -----------------------------------------------------------------

TEST_F(IpcdConfig, CreatePolicyRefusesUnlistedUsers) {
    need_root();
    start("[create]\nanyone = false\nusers = [4001]\ngroups = [4500]\n");
    const std::string sock = d->socket();
    const auto create_as = [&](uid_t uid, std::vector<gid_t> groups, const char* name, Result want) {
        return wait_exit(spawn([=] {
            become(uid, uid, groups);
            Checks c;
            auto cs = Session::connect(sock);
            c.expect(attempt([&] { Semaphore::create(cs, name, 1); }), want, name);
            return c.failures;
        }));
    };
    EXPECT_EQ(create_as(bob, {}, "by-bob", Result::permission_denied), 0) << "not listed";
    EXPECT_EQ(create_as(alice, {}, "by-alice", Result::ok), 0) << "listed uid";
    EXPECT_EQ(create_as(carol, {admins}, "by-carol", Result::ok), 0) << "member of a listed group (supplementary)";
    EXPECT_EQ(create_as(admins, {}, "by-admins-gid", Result::ok), 0) << "member of a listed group (primary)";
    EXPECT_NO_THROW(Semaphore::create(s, "by-root", 1)) << "root always may";
    EXPECT_FALSE(s->usage(bob).may_create);
    EXPECT_TRUE(s->usage(alice).may_create);
    // Reload back to anyone: bob may create now.
    reload("");
    EXPECT_EQ(create_as(bob, {}, "by-bob", Result::ok), 0);
}

// --- the state directory ---------------------------------------------------------------

TEST_F(IpcdConfig, PersistentAndDeclaredSemaphoresSurviveARestart) {
    const std::string text = "[[semaphore]]\nname = 'decl'\npermits = 2\nmode = '0644'\n";
    start(text);
    auto p = Semaphore::create(s, "persisted", 5, 0640, /*persist=*/true);
    Semaphore::create(s, "transient", 1);
    auto decl = Semaphore::open(s, "decl");
    ASSERT_FALSE(decl.acquire());
    const std::uint64_t token = decl.fencing_token();
    p = Semaphore{};
    decl = Semaphore{};
    s.reset();
    EXPECT_EQ(d->terminate(), 0);
    EXPECT_TRUE(std::filesystem::exists(cfg.dir() + "/state/semaphores.json"));
    d.reset();

    start(text);
    auto names = s->list();
    ASSERT_EQ(names.size(), 2u);
    auto info = s->stat("persisted");
    EXPECT_EQ(info.permits, 5u);
    EXPECT_EQ(info.mode, 0640u);
    EXPECT_TRUE(info.persistent);
    EXPECT_FALSE(info.declared);
    auto dinfo = s->stat("decl");
    EXPECT_TRUE(dinfo.declared);
    EXPECT_EQ(dinfo.available, 2u) << "holders do not survive a restart";
    auto decl2 = Semaphore::open(s, "decl");
    ASSERT_FALSE(decl2.acquire());
    EXPECT_GT(decl2.fencing_token(), token) << "a declared semaphore's tokens keep growing across a restart";
}

TEST_F(IpcdConfig, CorruptStateFileIsMovedAsideAndIpcdServes) {
    const std::string state = cfg.dir() + "/state";
    std::filesystem::create_directories(state);
    write_file(state + "/semaphores.json", "{\"format\": \"ipcd-state\", \"version\": 1, \"semaphores\": [{\"na");
    start("[[semaphore]]\nname = 'decl'\npermits = 1\n");
    std::vector<std::string> aside;
    for (const auto& e : std::filesystem::directory_iterator(state))
        if (e.path().filename().string().rfind("semaphores.json.corrupt-", 0) == 0)
            aside.push_back(e.path().filename());
    ASSERT_EQ(aside.size(), 1u) << d->log();
    std::ifstream in(state + "/" + aside[0]);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str().find("{\"format\""), 0u) << "the corrupt file is kept as it was, for a human";
    EXPECT_NE(d->log().find(aside[0]), std::string::npos) << "the log names where it went: " << d->log();
    EXPECT_EQ(s->status().sessions, 1u);
    auto names = s->list();
    ASSERT_EQ(names.size(), 1u) << "only the declared semaphore";
    EXPECT_EQ(names[0].name, "decl");
    auto p = Semaphore::create(s, "fresh", 1, 0600, /*persist=*/true);
    EXPECT_FALSE(p.acquire());
}

}  // namespace
