// tests/systemd_test.cpp - ipcd under systemd's protocols, without systemd:
//
//   - systemd-analyze verify accepts systemd/ipcd.socket and ipcd.service
//     (copies whose ExecStart names the ipcd built here), and the units
//     say what docs/operations.md promises;
//   - ipcd started by systemd-socket-activate serves a client on the
//     passed socket and speaks the notify protocol (READY=1 with its pid,
//     STATUS=, STOPPING=1 on SIGTERM);
//   - STATUS= follows the counts, at most once a second, and stays quiet
//     when nothing changes;
//   - with $WATCHDOG_USEC it sends WATCHDOG=1 every half interval, even
//     idle; with $WATCHDOG_PID naming another process, never.
//
// A SOCK_DGRAM socket of ours is the child's $NOTIFY_SOCKET; every wait is a
// poll() on it (or on the child's pidfd) with a timeout, never a sleep.
#include <sys/socket.h>
#include <sys/un.h>

#include <ctime>

#include "daemon_harness.hpp"

#ifndef IPCD_UNIT_DIR
#error "IPCD_UNIT_DIR must name the directory of the unit files"
#endif

namespace ipcd_test {
namespace {

std::string find_program(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::string dirs = path && *path ? path : "/usr/bin:/bin:/usr/sbin:/sbin";
    dirs += ":/usr/bin:/bin:/lib/systemd:/usr/lib/systemd";
    std::stringstream ss(dirs);
    for (std::string d; std::getline(ss, d, ':');) {
        const std::string p = d + "/" + name;
        if (!d.empty() && ::access(p.c_str(), X_OK) == 0) return p;
    }
    return {};
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// One notification datagram and when the kernel queued it (SO_TIMESTAMPNS:
// the send time, whatever our own scheduling delays).
struct Note {
    std::string text;
    std::chrono::nanoseconds at{};
    bool has(std::string_view line) const {
        std::stringstream ss(text);
        for (std::string l; std::getline(ss, l);)
            if (l == line) return true;
        return false;
    }
    bool has_prefix(std::string_view prefix) const { return field(prefix).has_value(); }
    std::optional<std::string> field(std::string_view prefix) const {
        std::stringstream ss(text);
        for (std::string l; std::getline(ss, l);)
            if (l.rfind(prefix, 0) == 0) return l.substr(prefix.size());
        return std::nullopt;
    }
};

class NotifySocket {
public:
    explicit NotifySocket(const std::string& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            throw std::runtime_error("cannot bind notify socket " + path);
        const int on = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    }
    ~NotifySocket() { ::close(fd_); }
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;
    const std::string& path() const { return path_; }

    // The next datagram, waiting up to `timeout`; nullopt on timeout.
    std::optional<Note> next(std::chrono::milliseconds timeout) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
        char buf[4096];
        iovec iov{buf, sizeof buf - 1};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(fd_, &msg, MSG_DONTWAIT);
        if (n < 0) return std::nullopt;
        Note note;
        note.text.assign(buf, static_cast<std::size_t>(n));
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                timespec ts;
                std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
                note.at = std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
            }
        seen.push_back(note);
        return note;
    }

    // Reads datagrams until one satisfies `pred` (each within `timeout`).
    template <class P>
    std::optional<Note> until(P&& pred, std::chrono::milliseconds timeout = 10s) {
        while (auto n = next(timeout))
            if (pred(*n)) return n;
        return std::nullopt;
    }

    std::vector<Note> seen;

private:
    std::string path_;
    int fd_ = -1;
};

// A child process running `argv` with `env` added, stderr to `log`; killed
// at the end if still running.
class Child {
public:
    Child(std::vector<std::string> argv, std::vector<std::string> env, const std::string& log,
          bool watchdog_pid_self = false)
        : log_(log) {
        std::fflush(nullptr);
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(97);
            const int lfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            ::dup2(lfd, 2);
            for (const char* v : {"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC",
                                  "WATCHDOG_PID", "IPCD_SOCKET"})
                ::unsetenv(v);
            for (auto& e : env) ::putenv(e.data());
            // exec keeps the pid: this is the daemon's own pid.
            if (watchdog_pid_self) ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
            std::vector<char*> a;
            for (auto& s : argv) a.push_back(s.data());
            a.push_back(nullptr);
            ::execv(a[0], a.data());
            ::_exit(127);
        }
    }
    ~Child() {
        if (pid_ > 0) kill9(pid_);
        if (::testing::Test::HasFailure()) std::fprintf(stderr, "--- log (%s) ---\n%s", log_.c_str(), log().c_str());
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    pid_t pid() const { return pid_; }
    std::string log() const { return read_file(log_); }
    // Waits up to `timeout` for the exit: its status, or nullopt.
    std::optional<int> wait(std::chrono::milliseconds timeout = 10s) {
        if (pid_ <= 0) return std::nullopt;
        auto rc = wait_exit_for(pid_, timeout);
        if (rc) pid_ = -1;  // reaped: never signal that pid again
        return rc;
    }
    // Sends `sig`, waits up to 10 s: the exit status, or -1.
    int stop(int sig = SIGTERM) {
        ::kill(pid_, sig);
        return wait().value_or(-1);
    }

private:
    std::string log_;
    pid_t pid_ = -1;
};

class TempDir {
public:
    TempDir() : path(make_temp_dir()) {}
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    const std::string path;
};

// --- the unit files ------------------------------------------------------------

TEST(SystemdUnits, DeclareWhatOperationsPromises) {
    const std::string socket = read_file(std::string(IPCD_UNIT_DIR) + "/ipcd.socket");
    const std::string service = read_file(std::string(IPCD_UNIT_DIR) + "/ipcd.service");
    ASSERT_FALSE(socket.empty());
    ASSERT_FALSE(service.empty());
    const auto has_line = [](const std::string& text, const std::string& line) {
        std::stringstream ss(text);
        for (std::string l; std::getline(ss, l);)
            if (l == line) return true;
        return false;
    };
    for (const char* l : {"ListenStream=/run/ipcd/ipcd.sock", "SocketMode=0666"})
        EXPECT_TRUE(has_line(socket, l)) << "ipcd.socket lacks " << l;
    for (const char* l :
         {"Type=notify", "NotifyAccess=main", "Requires=ipcd.socket", "After=ipcd.socket", "WatchdogSec=30s",
          "Restart=on-failure", "ExecStart=/usr/bin/ipcd --state-dir /var/lib/ipcd",
          "ExecReload=/bin/kill -HUP $MAINPID", "StateDirectory=ipcd",
          "RuntimeDirectory=ipcd", "RuntimeDirectoryPreserve=yes", "NoNewPrivileges=yes", "ProtectSystem=strict",
          "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes", "RestrictAddressFamilies=AF_UNIX",
          "SystemCallArchitectures=native", "CapabilityBoundingSet=", "MemoryDenyWriteExecute=yes",
          "SystemCallFilter=@system-service"})
        EXPECT_TRUE(has_line(service, l)) << "ipcd.service lacks " << l;
    // PrivateUsers= would make every client "nobody" to SO_PEERCRED.
    EXPECT_FALSE(has_line(service, "PrivateUsers=yes"));
}

TEST(SystemdUnits, AnalyzeVerifyPasses) {
    const std::string analyze = find_program("systemd-analyze");
    if (analyze.empty()) GTEST_SKIP() << "systemd-analyze is not installed (apt-get install systemd)";
    TempDir dir;
    // Copies whose ExecStart names the ipcd built here, so verify finds it.
    std::string service = read_file(std::string(IPCD_UNIT_DIR) + "/ipcd.service");
    const std::string installed = "ExecStart=/usr/bin/ipcd ";
    const auto at = service.find(installed);
    ASSERT_NE(at, std::string::npos);
    service.replace(at, installed.size(), std::string("ExecStart=") + IPCD_PATH + " ");
    std::ofstream(dir.path + "/ipcd.service") << service;
    std::ofstream(dir.path + "/ipcd.socket") << read_file(std::string(IPCD_UNIT_DIR) + "/ipcd.socket");

    const std::string out = dir.path + "/verify.out";
    Child verify({analyze, "verify", dir.path + "/ipcd.socket", dir.path + "/ipcd.service"},
                 {"SYSTEMD_PAGER=", "SYSTEMD_LOG_COLOR=0"}, out);
    const auto rc = verify.wait(90s);
    ASSERT_TRUE(rc.has_value()) << "systemd-analyze verify did not finish";
    EXPECT_EQ(*rc, 0) << read_file(out);
    // Warnings are printed but do not fail verify: none may name our units.
    EXPECT_EQ(read_file(out).find("ipcd."), std::string::npos) << read_file(out);
}

// --- socket activation and the notify protocol ------------------------------------

TEST(SystemdActivation, ServesAClientOnThePassedSocket) {
    const std::string activate = find_program("systemd-socket-activate");
    if (activate.empty()) GTEST_SKIP() << "systemd-socket-activate is not installed (apt-get install systemd)";
    TempDir dir;
    NotifySocket notify(dir.path + "/notify");
    const std::string sock = dir.path + "/ipcd.sock";
    // systemd-socket-activate passes only the variables named with -E.
    Child ipcd({activate, "-l", sock, "-E", "NOTIFY_SOCKET=" + notify.path(), IPCD_PATH, "--config",
                "/dev/null", "--state-dir", dir.path + "/state"}, {}, dir.path + "/log");

    // Like systemd, systemd-socket-activate starts the daemon on the first
    // connection: this connect waits in the socket's queue until ipcd,
    // started by it, accepts it. (Retried only until the socket exists.)
    std::shared_ptr<ipc::Session> s;
    ASSERT_TRUE(eventually([&] {
        try {
            s = ipc::Session::connect(sock);
            return true;
        } catch (const std::system_error& e) {
            if (e.code() != std::errc::no_such_file_or_directory && e.code() != std::errc::connection_refused) throw;
            return false;
        }
    })) << "cannot connect to " << sock;

    auto ready = notify.until([](const Note& n) { return n.has("READY=1"); });
    ASSERT_TRUE(ready) << "no READY=1";
    // systemd-socket-activate execs in place: the daemon is our child.
    EXPECT_EQ(ready->field("MAINPID="), std::to_string(ipcd.pid()));
    ASSERT_TRUE(ready->field("STATUS="));
    EXPECT_NE(ready->field("STATUS=")->find(sock), std::string::npos) << *ready->field("STATUS=");
    EXPECT_NE(ipcd.log().find("listening on " + sock), std::string::npos);

    {
        auto sem = ipc::Semaphore::create(s, "sd-activated", 2);
        EXPECT_FALSE(sem.acquire(2));
        EXPECT_EQ(sem.stat().available, 0u);
        EXPECT_EQ(sem.try_acquire(1), code(Result::would_block));
        EXPECT_FALSE(sem.release(2));
        EXPECT_EQ(sem.stat().available, 2u);
        EXPECT_GT(sem.fencing_token(), 0u);
        // The session shows up in a STATUS= line.
        EXPECT_TRUE(notify.until([](const Note& n) {
            auto st = n.field("STATUS=");
            return st && st->find(": 1 session, 1 semaphore, 0 waiters") != std::string::npos;
        })) << "no STATUS= with the session";
    }
    s.reset();

    ::kill(ipcd.pid(), SIGTERM);
    EXPECT_TRUE(notify.until([](const Note& n) { return n.has("STOPPING=1"); })) << "no STOPPING=1";
    const auto rc = ipcd.wait();
    ASSERT_TRUE(rc);
    EXPECT_EQ(*rc, 0);
}

TEST(SystemdNotify, StatusFollowsCountsAtMostOncePerSecond) {
    TempDir dir;
    NotifySocket notify(dir.path + "/notify");
    const std::string sock = dir.path + "/ipcd.sock";
    Child ipcd({IPCD_PATH, "--socket", sock, "--config", "/dev/null", "--state-dir", dir.path + "/state"}, {"NOTIFY_SOCKET=" + notify.path()}, dir.path + "/log");
    auto ready = notify.until([](const Note& n) { return n.has("READY=1"); });
    ASSERT_TRUE(ready) << "no READY=1";
    EXPECT_EQ(ready->field("STATUS="), "Listening on " + sock + ": 0 sessions, 0 semaphores, 0 waiters");

    const auto status_is = [](std::string tail) {
        return [tail](const Note& n) {
            auto st = n.field("STATUS=");
            return st && st->size() >= tail.size() && st->compare(st->size() - tail.size(), tail.size(), tail) == 0;
        };
    };
    {
        // A burst of changes: 5 sessions, 3 semaphores, one of them held.
        std::vector<std::shared_ptr<ipc::Session>> sessions;
        for (int i = 0; i < 5; ++i) sessions.push_back(ipc::Session::connect(sock));
        auto a = ipc::Semaphore::create(sessions[0], "a", 1);
        auto b = ipc::Semaphore::create(sessions[0], "b", 1);
        auto c = ipc::Semaphore::create(sessions[0], "c", 1, 0666);
        ASSERT_FALSE(c.acquire(1));
        ASSERT_TRUE(notify.until(status_is(": 5 sessions, 3 semaphores, 0 waiters")));

        // A waiter in another process.
        Pipe waiting;
        const pid_t child = spawn([&] {
            auto s = ipc::Session::connect(sock);
            auto w = ipc::Semaphore::open(s, "c");
            waiting.put();
            return w.acquire(1) ? 1 : 0;  // exits holding it: the daemon gives it back
        });
        ASSERT_TRUE(waiting.get());
        ASSERT_TRUE(notify.until(status_is(": 6 sessions, 3 semaphores, 1 waiter")));
        ASSERT_FALSE(c.release(1));
        EXPECT_EQ(wait_exit(child), 0);
        ASSERT_TRUE(notify.until(status_is(": 5 sessions, 3 semaphores, 0 waiters")));
    }
    // Sessions closed: their semaphores (not persistent) stay until deleted.
    ASSERT_TRUE(notify.until(status_is(": 0 sessions, 3 semaphores, 0 waiters")));

    // At most one STATUS= a second (send times, from the kernel's stamps;
    // the slack is for the daemon being preempted between its clock read and
    // the send on a loaded machine: unlimited, they would come microseconds
    // apart).
    std::vector<std::chrono::nanoseconds> times;
    for (const Note& n : notify.seen)
        if (n.has_prefix("STATUS=")) times.push_back(n.at);
    ASSERT_GE(times.size(), 4u);
    for (std::size_t i = 1; i < times.size(); ++i)
        EXPECT_GE(times[i] - times[i - 1], 900ms) << "STATUS= number " << i << " came too soon";

    // Idle and unchanged: nothing more, and no timer behind it.
    const auto extra = notify.next(1500ms);
    EXPECT_FALSE(extra) << "unexpected notification: " << extra->text;

    EXPECT_EQ(ipcd.stop(SIGTERM), 0);
    EXPECT_TRUE(notify.until([](const Note& n) { return n.has("STOPPING=1"); }, 1s));
}

// systemctl reload sends SIGHUP (ExecReload=): the daemon brackets the
// reload with RELOADING=1 and READY=1, whether the file is good or not.
TEST(SystemdNotify, ReloadIsBracketedByReloadingAndReady) {
    TempDir dir;
    NotifySocket notify(dir.path + "/notify");
    const std::string sock = dir.path + "/ipcd.sock";
    const std::string conf = dir.path + "/ipcd.conf";
    std::ofstream(conf) << "[[semaphore]]\nname = \"one\"\npermits = 1\n";
    Child ipcd({IPCD_PATH, "--socket", sock, "--config", conf, "--state-dir", dir.path + "/state"},
               {"NOTIFY_SOCKET=" + notify.path()}, dir.path + "/log");
    ASSERT_TRUE(notify.until([](const Note& n) { return n.has("READY=1"); })) << "no READY=1";
    auto s = ipc::Session::connect(sock);
    const auto names = [&] {
        std::vector<std::string> v;
        for (const auto& info : s->list()) v.push_back(info.name);
        return v;
    };
    EXPECT_EQ(names(), std::vector<std::string>{"one"});

    const auto reload_cycle = [&] {
        ::kill(ipcd.pid(), SIGHUP);
        const auto reloading = notify.until([](const Note& n) { return n.has("RELOADING=1"); });
        if (!reloading) return false;
        return notify.until([](const Note& n) { return n.has("READY=1"); }).has_value();
    };
    std::ofstream(conf, std::ios::trunc) << "[[semaphore]]\nname = \"one\"\npermits = 1\n"
                                            "[[semaphore]]\nname = \"two\"\npermits = 2\n";
    ASSERT_TRUE(reload_cycle()) << "no RELOADING=1 then READY=1 after SIGHUP";
    EXPECT_EQ(names(), (std::vector<std::string>{"one", "two"}));

    // A broken file: refused, logged with its line, still READY=1.
    std::ofstream(conf, std::ios::trunc) << "[[semaphore]]\nname = \"three\"\npermits = \"many\"\n";
    ASSERT_TRUE(reload_cycle()) << "a refused reload must still end with READY=1";
    EXPECT_EQ(names(), (std::vector<std::string>{"one", "two"})) << "the running configuration stays";
    EXPECT_NE(ipcd.log().find("reload refused: " + conf + ":3:"), std::string::npos) << ipcd.log();

    s.reset();
    EXPECT_EQ(ipcd.stop(SIGTERM), 0);
}

TEST(SystemdNotify, WatchdogPingsEveryHalfIntervalEvenIdle) {
    TempDir dir;
    NotifySocket notify(dir.path + "/notify");
    const std::string sock = dir.path + "/ipcd.sock";
    // WATCHDOG_PID is set to the daemon's own pid (the child sets it before exec).
    Child ipcd({IPCD_PATH, "--socket", sock, "--config", "/dev/null", "--state-dir", dir.path + "/state"}, {"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=200000"},
               dir.path + "/log", /*watchdog_pid_self=*/true);
    ASSERT_TRUE(notify.until([](const Note& n) { return n.has("READY=1"); })) << "no READY=1";

    std::vector<std::chrono::nanoseconds> pings;
    for (int i = 0; i < 6; ++i) {
        auto n = notify.until([](const Note& x) { return x.has("WATCHDOG=1"); }, 2s);
        ASSERT_TRUE(n) << "ping " << i << " did not come";
        pings.push_back(n->at);
    }
    // Every 100 ms (half of 200 ms): not faster (on average: one ping may be
    // sent late by preemption, which shortens the next gap), and (loosely,
    // the machine may be loaded) not much slower.
    for (std::size_t i = 1; i < pings.size(); ++i) EXPECT_GE(pings[i] - pings[i - 1], 50ms);
    EXPECT_GE(pings.back() - pings.front(), 5 * 90ms);
    EXPECT_LT(pings.back() - pings.front(), 5 * 200ms * 3);

    // Still pinging while it serves.
    auto s = ipc::Session::connect(sock);
    auto sem = ipc::Semaphore::create(s, "w", 1);
    ASSERT_FALSE(sem.acquire(1));
    ASSERT_FALSE(sem.release(1));
    EXPECT_TRUE(notify.until([](const Note& x) { return x.has("WATCHDOG=1"); }, 2s));

    EXPECT_EQ(ipcd.stop(SIGTERM), 0);
    EXPECT_NE(ipcd.log().find("watchdog"), std::string::npos);
}

TEST(SystemdNotify, NoWatchdogForAnotherPidOrWithoutUsec) {
    TempDir dir;
    for (const bool other_pid : {true, false}) {
        NotifySocket notify(dir.path + "/notify." + std::to_string(other_pid));
        const std::string sock = dir.path + "/ipcd.sock";
        std::vector<std::string> env{"NOTIFY_SOCKET=" + notify.path()};
        if (other_pid) {
            // Meant for our process (the test), not the daemon.
            env.push_back("WATCHDOG_USEC=200000");
            env.push_back("WATCHDOG_PID=" + std::to_string(::getpid()));
        }
        Child ipcd({IPCD_PATH, "--socket", sock, "--config", "/dev/null", "--state-dir", dir.path + "/state"}, env, dir.path + "/log." + std::to_string(other_pid));
        auto ready = notify.until([](const Note& n) { return n.has("READY=1"); });
        ASSERT_TRUE(ready) << "no READY=1";
        EXPECT_FALSE(ready->has("WATCHDOG=1"));
        // Proving an absence takes a wait: 600 ms is six would-be pings.
        const auto extra = notify.next(600ms);
        EXPECT_FALSE(extra) << "unexpected notification: " << extra->text;
        EXPECT_EQ(ipcd.stop(SIGTERM), 0);
    }
}

}  // namespace
}  // namespace ipcd_test
