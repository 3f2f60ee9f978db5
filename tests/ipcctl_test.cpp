// tests/ipcctl_test.cpp - ipcctl end to end: the real ipcctl binary against a
// real ipcd on a private socket.
//
// Every test starts its own daemon (readiness through $NOTIFY_SOCKET, as
// systemd would see it) and runs ipcctl with fork/exec, collecting its exit
// status, stdout and stderr. Nothing sleeps to synchronise: a test waits for a
// line a command prints, for a process to exit, or for the daemon to report a
// state (bounded polling of `stat --json`), and every wait has a deadline so a
// bug fails the test instead of hanging it.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#ifndef IPCCTL_PATH
#error "IPCCTL_PATH must name the ipcctl binary"
#endif
#ifndef IPCD_PATH
#error "IPCD_PATH must name the ipcd binary"
#endif

namespace {

using namespace std::chrono;
using nlohmann::json;

constexpr auto deadline_span = seconds(20);  // for anything that should take milliseconds
constexpr uid_t nobody = 65534;

// --- processes -----------------------------------------------------------------

struct Output {
    int status = -1;  // exit status, or 128+N if killed by signal N
    std::string out;
    std::string err;
};

std::ostream& operator<<(std::ostream& os, const Output& o) {
    return os << "status " << o.status << "\n--- stdout\n" << o.out << "--- stderr\n" << o.err;
}

int decode_status(int raw) {
    if (WIFEXITED(raw)) return WEXITSTATUS(raw);
    if (WIFSIGNALED(raw)) return 128 + WTERMSIG(raw);
    return -1;
}

struct SpawnOptions {
    std::optional<uid_t> uid;           // run as this uid (and gid), no supplementary groups
    std::vector<std::string> env;       // NAME=VALUE added to the environment
    std::vector<std::string> unset;     // names removed from the environment
};

// A running process with its stdin, stdout and stderr on pipes.
class Child {
public:
    Child() = default;
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    Child(Child&& o) noexcept { *this = std::move(o); }
    Child& operator=(Child&& o) noexcept {
        std::swap(pid, o.pid);
        std::swap(in, o.in);
        std::swap(out, o.out);
        std::swap(err, o.err);
        std::swap(out_buf, o.out_buf);
        return *this;
    }
    ~Child() {
        close_fd(in);
        close_fd(out);
        close_fd(err);
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }

    static Child spawn(const std::vector<std::string>& argv, const SpawnOptions& opt = {}) {
        int in_p[2], out_p[2], err_p[2];
        if (pipe2(in_p, O_CLOEXEC) != 0 || pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0)
            throw std::runtime_error("pipe2 failed");
        // Everything the child needs is built before fork.
        std::vector<std::string> env;
        for (char** e = environ; *e != nullptr; ++e) {
            std::string_view entry(*e);
            const auto key = entry.substr(0, entry.find('='));
            bool drop = false;
            for (const auto& u : opt.unset) drop = drop || key == u;
            for (const auto& a : opt.env) drop = drop || key == std::string_view(a).substr(0, a.find('='));
            if (!drop) env.emplace_back(entry);
        }
        env.insert(env.end(), opt.env.begin(), opt.env.end());
        std::vector<std::string> args = argv;
        std::vector<char*> c_args, c_env;
        for (auto& a : args) c_args.push_back(a.data());
        c_args.push_back(nullptr);
        for (auto& e : env) c_env.push_back(e.data());
        c_env.push_back(nullptr);

        const pid_t pid = fork();
        if (pid < 0) throw std::runtime_error("fork failed");
        if (pid == 0) {
            dup2(in_p[0], 0);
            dup2(out_p[1], 1);
            dup2(err_p[1], 2);
            if (opt.uid) {
                if (setgroups(0, nullptr) != 0 || setgid(*opt.uid) != 0 || setuid(*opt.uid) != 0) _exit(120);
            }
            execve(c_args[0], c_args.data(), c_env.data());
            _exit(121);
        }
        ::close(in_p[0]);
        ::close(out_p[1]);
        ::close(err_p[1]);
        Child c;
        c.pid = pid;
        c.in = in_p[1];
        c.out = out_p[0];
        c.err = err_p[0];
        return c;
    }

    // The next line the process writes to stdout (without '\n'); empty on
    // EOF or after the deadline (the test then fails on the comparison).
    std::string read_line() {
        const auto deadline = steady_clock::now() + deadline_span;
        while (true) {
            if (auto nl = out_buf.find('\n'); nl != std::string::npos) {
                std::string line = out_buf.substr(0, nl);
                out_buf.erase(0, nl + 1);
                return line;
            }
            const auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
            if (left <= 0) return {};
            pollfd p{out, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
            char buf[512];
            const ssize_t n = ::read(out, buf, sizeof buf);
            if (n <= 0) return {};
            out_buf.append(buf, static_cast<std::size_t>(n));
        }
    }

    void close_stdin() { close_fd(in); }

    // Closes stdin, reads stdout and stderr to EOF, and reaps the process.
    Output wait() {
        close_fd(in);
        Output o;
        o.out = std::move(out_buf);
        const auto deadline = steady_clock::now() + deadline_span;
        while (out >= 0 || err >= 0) {
            pollfd p[2] = {{out, POLLIN, 0}, {err, POLLIN, 0}};
            const auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
            if (left <= 0) {
                ADD_FAILURE() << "process " << pid << " kept its output open past the deadline";
                break;
            }
            if (::poll(p, 2, static_cast<int>(left)) <= 0) continue;
            for (int i = 0; i < 2; ++i) {
                int& fd = i == 0 ? out : err;
                if (fd < 0 || p[i].revents == 0) continue;
                char buf[4096];
                const ssize_t n = ::read(fd, buf, sizeof buf);
                if (n <= 0)
                    close_fd(fd);
                else
                    (i == 0 ? o.out : o.err).append(buf, static_cast<std::size_t>(n));
            }
        }
        o.status = reap();
        return o;
    }

    // Waits for the process to exit (without touching its pipes).
    int reap() {
        int raw = 0;
        if (pid <= 0) return -1;
        while (::waitpid(pid, &raw, 0) < 0 && errno == EINTR) {
        }
        pid = -1;
        return decode_status(raw);
    }

    pid_t pid = -1;
    int in = -1, out = -1, err = -1;

private:
    static void close_fd(int& fd) {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
    std::string out_buf;
};

Output run(const std::vector<std::string>& argv, const SpawnOptions& opt = {}) {
    return Child::spawn(argv, opt).wait();
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// The caller's user and group names, as ipcctl shows them.
std::string my_user() {
    const passwd* pw = ::getpwuid(::getuid());
    return pw != nullptr ? pw->pw_name : std::to_string(::getuid());
}
std::string my_group() {
    const group* gr = ::getgrgid(::getgid());
    return gr != nullptr ? gr->gr_name : std::to_string(::getgid());
}

// --- usage: no daemon needed ---------------------------------------------------------

Output ctl_nodaemon(std::vector<std::string> args) {
    args.insert(args.begin(), {IPCCTL_PATH, "--socket", "/nonexistent/ipcd.sock"});
    return run(args);
}

TEST(IpcctlUsage, VersionPrintsProgramAndProtocol) {
    for (const char* flag : {"--version", "-V"}) {
        const auto o = ctl_nodaemon({flag});
        EXPECT_EQ(o.status, 0) << o;
        EXPECT_EQ(o.out.rfind("ipcctl ", 0), 0u) << o;
        EXPECT_TRUE(contains(o.out, "protocol 1")) << o;
    }
}

TEST(IpcctlUsage, HelpOnEveryVerbExitsZero) {
    const auto top = ctl_nodaemon({"--help"});
    EXPECT_EQ(top.status, 0) << top;
    EXPECT_TRUE(contains(top.out, "Exit status:")) << top;
    for (const char* verb : {"status", "list", "stat", "create", "delete", "acquire", "sessions", "release-session",
                             "reload", "channels", "channel"}) {
        const auto o = ctl_nodaemon({verb, "--help"});
        EXPECT_EQ(o.status, 0) << verb << "\n" << o;
        EXPECT_TRUE(contains(o.out, std::string("Usage: ipcctl ") + verb)) << o;
        EXPECT_TRUE(contains(o.out, "Exit status:")) << o;
        EXPECT_TRUE(o.err.empty()) << o;
        EXPECT_TRUE(contains(top.out, "  " + std::string(verb) + " ")) << top;
    }
    for (const char* sub : {"stat", "rm"}) {
        const auto o = ctl_nodaemon({"channel", sub, "--help"});
        EXPECT_EQ(o.status, 0) << sub << "\n" << o;
        EXPECT_TRUE(contains(o.out, std::string("Usage: ipcctl channel ") + sub)) << o;
    }
}

TEST(IpcctlUsage, MissingOrUnknownVerbIsAUsageError) {
    auto o = ctl_nodaemon({});
    EXPECT_EQ(o.status, 2) << o;
    EXPECT_EQ(o.err,
              "ipcctl: a verb is required: status, list, stat, create, delete, acquire, sessions, release-session, "
              "reload, channels or channel; see 'ipcctl --help'\n");
    o = ctl_nodaemon({"frobnicate"});
    EXPECT_EQ(o.status, 2) << o;
    EXPECT_EQ(o.err, "ipcctl: unknown verb or argument: frobnicate; see 'ipcctl --help'\n");
    o = ctl_nodaemon({"list", "--bogus"});
    EXPECT_EQ(o.status, 2) << o;
    EXPECT_TRUE(contains(o.err, "see 'ipcctl list --help'")) << o;
    EXPECT_TRUE(o.out.empty()) << o;
}

TEST(IpcctlUsage, MalformedNumbersAreRejectedBeforeConnecting) {
    struct Case {
        std::vector<std::string> args;
        std::string message;
    };
    const std::vector<Case> cases = {
        {{"create", "x"}, "--permits is required"},
        {{"create", "x", "--permits", "3x"}, "invalid --permits value '3x'"},
        {{"create", "x", "--permits", "-1"}, "invalid --permits value '-1'"},
        {{"create", "x", "--permits", "0"}, "invalid --permits value '0'"},
        {{"create", "x", "--permits", "4294967296"}, "invalid --permits value '4294967296'"},
        {{"create", "x", "--permits", " 3"}, "invalid --permits value ' 3'"},
        {{"create", "x", "-p", "3", "--mode", "0800"}, "invalid --mode value '0800'"},
        {{"create", "x", "-p", "3", "--mode", "1000"}, "invalid --mode value '1000': at most 0777"},
        {{"create", "x", "-p", "3", "--mode", "0x1ff"}, "invalid --mode value '0x1ff'"},
        {{"create", "x", "-p", "3", "--mode", "rw"}, "invalid --mode value 'rw'"},
        {{"acquire", "x", "--count", "2x", "--", "true"}, "invalid --count value '2x'"},
        {{"acquire", "x", "--count", "0", "--", "true"}, "invalid --count value '0'"},
        {{"acquire", "x", "--timeout", "1.5x", "--", "true"}, "invalid --timeout value '1.5x'"},
        {{"acquire", "x", "--timeout", "-1", "--", "true"}, "invalid --timeout value '-1'"},
        {{"acquire", "x", "--timeout", "99999999999", "--", "true"}, "invalid --timeout value '99999999999'"},
        {{"acquire", "x", "-E", "256", "--", "true"}, "invalid --conflict-exit-code value '256'"},
        {{"acquire", "x", "-n", "-t", "1", "--", "true"}, "--nonblock and --timeout exclude each other"},
    };
    for (const auto& c : cases) {
        const auto o = ctl_nodaemon(c.args);
        EXPECT_EQ(o.status, 2) << c.args[0] << " " << c.message << "\n" << o;
        EXPECT_EQ(o.err.rfind("ipcctl: ", 0), 0u) << o;
        EXPECT_TRUE(contains(o.err, c.message)) << o;
        EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << "one line\n" << o;
    }
}

TEST(IpcctlUsage, InvalidNamesAreUsageErrors) {
    for (const std::string& name : {std::string(".hidden"), std::string("a/b"), std::string(33, 'n'),
                                   std::string("sp ace")}) {
        for (const auto& args : std::vector<std::vector<std::string>>{{"stat", name},
                                                                      {"create", name, "-p", "1"},
                                                                      {"delete", name},
                                                                      {"acquire", name, "--", "true"}}) {
            const auto o = ctl_nodaemon(args);
            EXPECT_EQ(o.status, 2) << args[0] << " '" << name << "'\n" << o;
            EXPECT_TRUE(contains(o.err, "invalid semaphore name")) << o;
        }
    }
}

TEST(IpcctlUsage, AcquireNeedsACommandAndDoubleDashBeforeItsOptions) {
    auto o = ctl_nodaemon({"acquire", "x"});
    EXPECT_EQ(o.status, 2) << o;
    EXPECT_TRUE(contains(o.err, "acquire needs a COMMAND")) << o;
    o = ctl_nodaemon({"acquire", "x", "ls", "-l"});
    EXPECT_EQ(o.status, 2) << o;
    EXPECT_TRUE(contains(o.err, "put -- before the command")) << o;
}

TEST(IpcctlUsage, NoDaemonExitsSixWithAHint) {
    for (const char* verb : {"status", "list"}) {
        const auto o = ctl_nodaemon({verb});
        EXPECT_EQ(o.status, 6) << o;
        EXPECT_EQ(o.err,
                  "ipcctl: no daemon at /nonexistent/ipcd.sock: is ipcd running? (or pass --socket, set "
                  "$IPCD_SOCKET)\n");
    }
    const auto o = ctl_nodaemon({"acquire", "x", "--", "true"});
    EXPECT_EQ(o.status, 6) << o;
}

// --- with a daemon ---------------------------------------------------------------------

class Ipcctl : public ::testing::Test {
protected:
    void SetUp() override {
        // Orphans of `acquire` commands are reparented to us, so no test
        // leaves a stray process behind on the machine.
        ::prctl(PR_SET_CHILD_SUBREAPER, 1);
        char tmpl[] = "/tmp/ipcctl-test.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        ::chmod(dir_.c_str(), 0755);  // other uids must reach the socket
        socket_ = dir_ + "/ipcd.sock";
        config_ = dir_ + "/ipcd.conf";
        state_dir_ = dir_ + "/state";
        write_config("");
        start_daemon();
    }

    void TearDown() override {
        stop_daemon();
        if (HasFailure()) {
            std::ifstream log(dir_ + "/ipcd.log");
            std::stringstream ss;
            ss << log.rdbuf();
            std::cerr << "--- ipcd log\n" << ss.str();
        }
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
        // Reap what the subreaper collected.
        while (::waitpid(-1, nullptr, WNOHANG) > 0) {
        }
    }

    // Starts ipcd and waits for READY=1 on a notify socket of our own.
    void start_daemon() {
        const std::string notify_path = dir_ + "/notify";
        const int nfd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ASSERT_GE(nfd, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, notify_path.c_str(), sizeof addr.sun_path - 1);
        ASSERT_EQ(::bind(nfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);

        const int log = ::open((dir_ + "/ipcd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::dup2(log, 2);
            ::dup2(log, 1);
            ::setenv("NOTIFY_SOCKET", notify_path.c_str(), 1);
            ::unsetenv("IPCD_SOCKET");
            // A private configuration file and state directory: nothing of
            // the machine's /etc/ipcd or /var/lib/ipcd leaks in or out.
            ::execl(IPCD_PATH, IPCD_PATH, "--socket", socket_.c_str(), "--config", config_.c_str(), "--state-dir",
                    state_dir_.c_str(), static_cast<char*>(nullptr));
            ::_exit(121);
        }
        ::close(log);
        daemon_pid_ = pid;

        bool ready = false;
        const auto deadline = steady_clock::now() + deadline_span;
        while (!ready && steady_clock::now() < deadline) {
            pollfd p{nfd, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) {
                int raw = 0;
                if (::waitpid(pid, &raw, WNOHANG) == pid) {
                    daemon_pid_ = -1;
                    break;  // it died before getting ready
                }
                continue;
            }
            char buf[4096];
            const ssize_t n = ::recv(nfd, buf, sizeof buf, 0);
            if (n > 0 && contains(std::string(buf, static_cast<std::size_t>(n)), "READY=1")) ready = true;
        }
        ::close(nfd);
        ASSERT_TRUE(ready) << "ipcd did not report READY=1";
    }

    int stop_daemon() {
        if (daemon_pid_ <= 0) return -1;
        ::kill(daemon_pid_, SIGTERM);
        int raw = 0;
        ::waitpid(daemon_pid_, &raw, 0);
        daemon_pid_ = -1;
        return decode_status(raw);
    }

    std::vector<std::string> argv(std::vector<std::string> args) const {
        args.insert(args.begin(), {IPCCTL_PATH, "--socket", socket_});
        return args;
    }

    Output ctl(std::vector<std::string> args, const SpawnOptions& opt = {}) { return run(argv(std::move(args)), opt); }

    Child start(std::vector<std::string> args, const SpawnOptions& opt = {}) {
        return Child::spawn(argv(std::move(args)), opt);
    }

    json stat_json(const std::string& name) {
        const auto o = ctl({"--json", "stat", name});
        EXPECT_EQ(o.status, 0) << o;
        return json::parse(o.out);
    }

    void create(const std::string& name, unsigned permits, const std::string& mode = "0600") {
        const auto o = ctl({"create", name, "--permits", std::to_string(permits), "--mode", mode});
        ASSERT_EQ(o.status, 0) << o;
    }

    // Waits until the daemon reports `field` of `name` equal to `value`
    // (polling stat, bounded).
    ::testing::AssertionResult eventually(const std::string& name, const std::string& field, unsigned value) {
        const auto deadline = steady_clock::now() + deadline_span;
        json last;
        while (steady_clock::now() < deadline) {
            last = stat_json(name);
            if (last[field] == value) return ::testing::AssertionSuccess();
        }
        return ::testing::AssertionFailure() << field << " never became " << value << ": " << last.dump();
    }

    // All permits are free again: a blocking acquire of every permit
    // succeeds (within a generous timeout, which only a bug reaches).
    ::testing::AssertionResult all_free(const std::string& name, unsigned permits) {
        const auto o = ctl({"acquire", name, "--count", std::to_string(permits), "--timeout", "20", "--", "true"});
        if (o.status == 0) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "permits of " << name << " not given back: " << o;
    }

    void write_config(const std::string& text) {
        std::ofstream f(config_, std::ios::trunc);
        f << text;
    }

    std::string dir_;
    std::string socket_;
    std::string config_;
    std::string state_dir_;
    pid_t daemon_pid_ = -1;
};

TEST_F(Ipcctl, StatusShowsDaemonPidSocketAndCounts) {
    create("a", 1);
    create("b", 2);
    auto o = ctl({"status", "--json"});
    ASSERT_EQ(o.status, 0) << o;
    const auto j = json::parse(o.out);
    EXPECT_EQ(j["pid"], daemon_pid_);
    EXPECT_EQ(j["socket"], socket_);
    EXPECT_EQ(j["semaphores"], 2);
    EXPECT_GE(j["sessions"], 1);
    EXPECT_EQ(j["waiting"], 0);
    EXPECT_GE(j["uptime"], 0);
    EXPECT_TRUE(j["started"].is_string());
    EXPECT_EQ(j["started"].get<std::string>().back(), 'Z');

    o = ctl({"status"});
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_TRUE(contains(o.out, "ipcd (pid " + std::to_string(daemon_pid_) + ")")) << o;
    EXPECT_TRUE(contains(o.out, "Socket:     " + socket_ + "\n")) << o;
    EXPECT_TRUE(contains(o.out, "Semaphores: 2\n")) << o;
    EXPECT_TRUE(contains(o.out, "Uptime:")) << o;
    EXPECT_TRUE(contains(o.out, "Waiting:    0 requests\n")) << o;
}

TEST_F(Ipcctl, SocketComesFromIpcdSocketWhenNotGiven) {
    SpawnOptions opt;
    opt.env = {"IPCD_SOCKET=" + socket_};
    const auto o = run({IPCCTL_PATH, "--json", "status"}, opt);
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_EQ(json::parse(o.out)["socket"], socket_);
}

TEST_F(Ipcctl, CreateListStatDeleteRoundTrip) {
    auto o = ctl({"create", "demo", "--permits", "3", "--mode", "0640"});
    EXPECT_EQ(o.status, 0) << o;
    EXPECT_TRUE(o.out.empty() && o.err.empty()) << o;

    o = ctl({"list", "--json"});
    ASSERT_EQ(o.status, 0) << o;
    auto list = json::parse(o.out);
    ASSERT_TRUE(list.is_array());
    ASSERT_EQ(list.size(), 1u);
    const auto& s = list[0];
    EXPECT_EQ(s["name"], "demo");
    EXPECT_EQ(s["permits"], 3);
    EXPECT_EQ(s["available"], 3);
    EXPECT_EQ(s["holder_count"], 0);
    EXPECT_EQ(s["waiter_count"], 0);
    EXPECT_EQ(s["owner"], ::getuid());
    EXPECT_EQ(s["group"], ::getgid());
    EXPECT_EQ(s["mode"], "0640");
    EXPECT_EQ(s["persistent"], false);
    EXPECT_EQ(s["last_token"], 0);
    EXPECT_FALSE(s.contains("holders"));

    const auto st = stat_json("demo");
    EXPECT_EQ(st["name"], "demo");
    EXPECT_EQ(st["permits"], 3);
    EXPECT_EQ(st["mode"], "0640");
    EXPECT_EQ(st["owner_name"], my_user());
    EXPECT_EQ(st["group_name"], my_group());
    EXPECT_TRUE(st["holders"].is_array() && st["holders"].empty()) << st.dump();
    EXPECT_TRUE(st["waiters"].is_array() && st["waiters"].empty()) << st.dump();

    o = ctl({"delete", "demo"});
    EXPECT_EQ(o.status, 0) << o;
    o = ctl({"list", "--json"});
    EXPECT_EQ(json::parse(o.out), json::array());
}

TEST_F(Ipcctl, ListTableHasAlignedColumnsAndOptions) {
    create("alpha", 3, "0644");
    create("b", 12);
    auto o = ctl({"list"});
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_EQ(o.out.substr(0, o.out.find('\n')),
              "NAME   PERMITS  AVAILABLE  HOLDERS  WAITERS  OWNER  GROUP  MODE  PERSISTENT  DECLARED  TOKEN");

    o = ctl({"list", "-o", "name,permits,available,holders,waiters,mode,persistent,token"});
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_EQ(o.out,
              "NAME   PERMITS  AVAILABLE  HOLDERS  WAITERS  MODE  PERSISTENT  TOKEN\n"
              "alpha        3          3        0        0  0644  no              0\n"
              "b           12         12        0        0  0600  no              0\n");

    o = ctl({"list", "-n", "-o", "owner,group"});
    EXPECT_EQ(o.out, my_user() + "  " + my_group() + "\n" + my_user() + "  " + my_group() + "\n");

    o = ctl({"list", "--noheadings", "--output", "name,permits"});
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_EQ(o.out, "alpha   3\nb      12\n");

    o = ctl({"list", "-o", "NAME,NOPE"});
    EXPECT_EQ(o.status, 2) << o;
    EXPECT_TRUE(contains(o.err, "unknown column 'NOPE'")) << o;
}

TEST_F(Ipcctl, StatTextShowsTheSemaphore) {
    create("demo", 3, "0640");
    const auto o = ctl({"stat", "demo"});
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_TRUE(contains(o.out, "Name:       demo\n")) << o;
    EXPECT_TRUE(contains(o.out, "Permits:    3 (3 available, 0 held)\n")) << o;
    EXPECT_TRUE(contains(o.out, "Owner:      " + my_user() + " (uid " + std::to_string(::getuid()) + ")\n")) << o;
    EXPECT_TRUE(contains(o.out, "Mode:       0640 (rw-r-----)\n")) << o;
    EXPECT_TRUE(contains(o.out, "Persistent: no\n")) << o;
    EXPECT_TRUE(contains(o.out, "Holders: 0\n")) << o;
    EXPECT_TRUE(contains(o.out, "Waiters: 0\n")) << o;
}

TEST_F(Ipcctl, CreateOfAnExistingNameExitsSevenUnlessExistOk) {
    create("demo", 3);
    auto o = ctl({"create", "demo", "--permits", "5"});
    EXPECT_EQ(o.status, 7) << o;
    EXPECT_EQ(o.err, "ipcctl: semaphore demo exists already: delete it first, or use --exist-ok\n");
    o = ctl({"create", "demo", "--permits", "5", "--exist-ok"});
    EXPECT_EQ(o.status, 0) << o;
    EXPECT_EQ(stat_json("demo")["permits"], 3) << "--exist-ok leaves the existing one alone";
}

TEST_F(Ipcctl, CreatePersistIsShownInStat) {
    auto o = ctl({"create", "keep", "-p", "1", "--persist"});
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_EQ(stat_json("keep")["persistent"], true);
    o = ctl({"list", "-n", "-o", "name,persistent"});
    EXPECT_EQ(o.out, "keep  yes\n");
}

TEST_F(Ipcctl, MissingSemaphoreExitsThree) {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"stat", "ghost"}, {"delete", "ghost"}, {"acquire", "ghost", "--", "true"}}) {
        const auto o = ctl(args);
        EXPECT_EQ(o.status, 3) << args[0] << "\n" << o;
        EXPECT_EQ(o.err, "ipcctl: no semaphore ghost: see 'ipcctl list' for the semaphores there are\n") << o;
    }
    const auto o = ctl({"delete", "--force", "ghost"});
    EXPECT_EQ(o.status, 0) << o;
}

TEST_F(Ipcctl, OtherUsersGetPermissionDeniedExitFour) {
    create("private", 1, "0600");
    create("readable", 1, "0644");
    if (::getuid() != 0) GTEST_SKIP() << "needs root to run ipcctl as another uid";
    SpawnOptions as_nobody;
    as_nobody.uid = nobody;

    auto o = ctl({"stat", "private"}, as_nobody);
    EXPECT_EQ(o.status, 4) << o;
    EXPECT_TRUE(contains(o.err, "ipcctl: permission denied for semaphore private")) << o;

    o = ctl({"stat", "readable"}, as_nobody);
    EXPECT_EQ(o.status, 0) << o;

    o = ctl({"acquire", "readable", "--", "true"}, as_nobody);
    EXPECT_EQ(o.status, 4) << o;
    EXPECT_TRUE(contains(o.err, "ipcctl: permission denied for semaphore readable")) << o;

    o = ctl({"delete", "readable"}, as_nobody);
    EXPECT_EQ(o.status, 4) << o;
    EXPECT_EQ(o.err, "ipcctl: permission denied for semaphore readable: only its owner or root may delete it\n");
    EXPECT_EQ(stat_json("readable")["name"], "readable") << "still there";
}

TEST_F(Ipcctl, ListShowsOnlyTheSummaryOfSemaphoresYouMayNotRead) {
    create("private", 2, "0600");
    create("readable", 1, "0644");
    if (::getuid() != 0) GTEST_SKIP() << "needs root to run ipcctl as another uid";
    SpawnOptions as_nobody;
    as_nobody.uid = nobody;
    auto o = ctl({"list", "--json"}, as_nobody);
    ASSERT_EQ(o.status, 0) << o;
    const auto list = json::parse(o.out);
    ASSERT_EQ(list.size(), 2u) << list.dump();
    for (const auto& s : list) {
        if (s["name"] == "private") {
            EXPECT_EQ(s["permits"], 2);
            EXPECT_EQ(s["available"], 2);
            EXPECT_TRUE(s["mode"].is_null()) << s.dump();
            EXPECT_TRUE(s["owner"].is_null()) << s.dump();
        } else {
            EXPECT_EQ(s["mode"], "0644") << s.dump();
            EXPECT_EQ(s["owner"], ::getuid()) << s.dump();
        }
    }
    o = ctl({"list", "-n", "-o", "name,permits,mode,owner"}, as_nobody);
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_TRUE(contains(o.out, "private   2  -     -\n")) << o;
    EXPECT_TRUE(contains(o.out, "readable  1  0644  " + my_user() + "\n")) << o;
}

TEST_F(Ipcctl, AcquireRunsTheCommandHoldingThePermits) {
    create("demo", 3);
    // The command prints its environment, then asks the daemon from inside.
    const auto o = ctl({"acquire", "demo", "--count", "2", "--", "/bin/sh", "-c",
                        "echo \"$IPC_FENCING_TOKEN $IPC_SEMAPHORE $IPC_PERMITS $IPCD_SOCKET\"; "
                        "readlink /proc/self/fd/$IPC_SESSION_FD; exec \"$0\" --json stat demo",
                        IPCCTL_PATH});
    ASSERT_EQ(o.status, 0) << o;
    std::istringstream lines(o.out);
    std::string env_line, fd_line;
    std::getline(lines, env_line);
    std::getline(lines, fd_line);
    std::string rest((std::istreambuf_iterator<char>(lines)), std::istreambuf_iterator<char>());
    const auto st = json::parse(rest);

    EXPECT_EQ(st["available"], 1) << st.dump();
    EXPECT_EQ(st["holder_count"], 1) << st.dump();
    ASSERT_EQ(st["holders"].size(), 1u) << st.dump();
    EXPECT_EQ(st["holders"][0]["count"], 2);
    EXPECT_EQ(st["holders"][0]["uid"], ::getuid());
    EXPECT_TRUE(st["holders"][0]["since"].is_string());
    const auto token = st["last_token"].get<std::uint64_t>();
    EXPECT_GT(token, 0u);
    EXPECT_EQ(env_line, std::to_string(token) + " demo 2 " + socket_);
    EXPECT_EQ(fd_line.rfind("socket:", 0), 0u) << "IPC_SESSION_FD is the inherited session socket: " << fd_line;

    EXPECT_TRUE(all_free("demo", 3));
}

TEST_F(Ipcctl, HolderPidIsIpcctlsAndAnotherGrantGetsANewerToken) {
    create("demo", 2);
    Child holder = start({"acquire", "demo", "--", "/bin/sh", "-c", "echo $IPC_FENCING_TOKEN; exec cat"});
    const auto first = std::stoull(holder.read_line());
    auto st = stat_json("demo");
    ASSERT_EQ(st["holders"].size(), 1u) << st.dump();
    EXPECT_EQ(st["holders"][0]["pid"], holder.pid);

    const auto o = ctl({"acquire", "demo", "--", "/bin/sh", "-c", "echo $IPC_FENCING_TOKEN"});
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_GT(std::stoull(o.out), first);
    EXPECT_EQ(holder.wait().status, 0);
    EXPECT_TRUE(all_free("demo", 2));
}

TEST_F(Ipcctl, AcquireExitsWithTheCommandsStatus) {
    create("demo", 1);
    auto o = ctl({"acquire", "demo", "--", "/bin/sh", "-c", "exit 42"});
    EXPECT_EQ(o.status, 42) << o;
    o = ctl({"acquire", "demo", "--", "/bin/sh", "-c", "kill -TERM $$"});
    EXPECT_EQ(o.status, 128 + SIGTERM) << o;
    o = ctl({"acquire", "demo", "--", "/bin/sh", "-c", "kill -KILL $$"});
    EXPECT_EQ(o.status, 128 + SIGKILL) << o;
    o = ctl({"acquire", "demo", "--", "no-such-command-ipcctl-test"});
    EXPECT_EQ(o.status, 127) << o;
    EXPECT_EQ(o.err, "ipcctl: no-such-command-ipcctl-test: command not found\n");
    o = ctl({"acquire", "demo", "--", dir_});  // a directory: found, not runnable
    EXPECT_EQ(o.status, 126) << o;
    EXPECT_TRUE(contains(o.err, "ipcctl: cannot run " + dir_)) << o;
    o = ctl({"acquire", "demo", "--", "/bin/sh", "-c", "echo out; echo err >&2"});
    EXPECT_EQ(o.status, 0) << o;
    EXPECT_EQ(o.out, "out\n");
    EXPECT_EQ(o.err, "err\n");
    EXPECT_TRUE(all_free("demo", 1));
}

TEST_F(Ipcctl, InheritedSessionKeepsThePermitsAfterIpcctlIsKilled) {
    create("demo", 3);
    Child holder = start({"acquire", "demo", "--", "/bin/sh", "-c", "echo started; exec cat"});
    ASSERT_EQ(holder.read_line(), "started");

    ASSERT_EQ(::kill(holder.pid, SIGKILL), 0);
    EXPECT_EQ(holder.reap(), 128 + SIGKILL);

    // ipcctl is gone; its command still has the session, so the daemon has
    // seen no hang-up and nothing changed.
    const auto st = stat_json("demo");
    EXPECT_EQ(st["available"], 2) << st.dump();
    EXPECT_EQ(st["holder_count"], 1) << st.dump();
    auto o = ctl({"acquire", "demo", "--count", "3", "--nonblock", "--", "true"});
    EXPECT_EQ(o.status, 5) << o;

    holder.close_stdin();  // cat, the last holder of the session, exits
    EXPECT_TRUE(all_free("demo", 3));
}

TEST_F(Ipcctl, ABackgroundProcessOfTheCommandKeepsThePermitsAfterIpcctlExits) {
    create("demo", 3);
    // sh leaves a cat behind that has the session (fd 3) and our stdin (as
    // fd 9: an asynchronous list gets /dev/null for fd 0), then exits
    // 127 itself (a status that must not be mistaken for "not found").
    Child c = start({"acquire", "demo", "--", "/bin/sh", "-c",
                     "exec 9<&0; cat <&9 >/dev/null 2>&1 & echo started; exit 127"});
    ASSERT_EQ(c.read_line(), "started");
    EXPECT_EQ(c.reap(), 127);

    const auto st = stat_json("demo");
    EXPECT_EQ(st["available"], 2) << st.dump();
    EXPECT_EQ(st["holder_count"], 1) << st.dump();

    c.close_stdin();  // the cat exits, and with it the session
    EXPECT_TRUE(all_free("demo", 3));
}

TEST_F(Ipcctl, NoInheritKeepsTheSessionFromTheCommand) {
    create("demo", 3);
    auto o = ctl({"acquire", "--no-inherit", "demo", "--", "/bin/sh", "-c",
                  "echo ${IPC_SESSION_FD-unset} $IPC_FENCING_TOKEN"});
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_EQ(o.out.rfind("unset ", 0), 0u) << o;

    Child holder = start({"acquire", "--no-inherit", "demo", "--", "/bin/sh", "-c", "echo started; exec cat"});
    ASSERT_EQ(holder.read_line(), "started");
    EXPECT_EQ(stat_json("demo")["available"], 2);
    ASSERT_EQ(::kill(holder.pid, SIGKILL), 0);
    EXPECT_EQ(holder.reap(), 128 + SIGKILL);
    // Only ipcctl had the session: its death gives the permit back while the
    // command still runs.
    EXPECT_TRUE(all_free("demo", 3));
    holder.close_stdin();
}

TEST_F(Ipcctl, TimeoutAndNonblockExitFiveWithAMessage) {
    create("one", 1);
    Child holder = start({"acquire", "one", "--", "/bin/sh", "-c", "echo started; exec cat"});
    ASSERT_EQ(holder.read_line(), "started");

    auto o = ctl({"acquire", "one", "--timeout", "0.2", "--", "true"});
    EXPECT_EQ(o.status, 5) << o;
    EXPECT_EQ(o.err,
              "ipcctl: timed out after 200ms waiting for 1 permit of semaphore one: retry, or raise --timeout\n");
    o = ctl({"acquire", "one", "--nonblock", "--", "true"});
    EXPECT_EQ(o.status, 5) << o;
    EXPECT_EQ(o.err, "ipcctl: semaphore one has no permit free now (--nonblock): retry later, or wait with --timeout\n");
    o = ctl({"acquire", "one", "--timeout", "0", "--", "true"});
    EXPECT_EQ(o.status, 5) << o;
    EXPECT_TRUE(contains(o.err, "has no permit free now (--timeout 0)")) << o;
    o = ctl({"acquire", "one", "-n", "--conflict-exit-code", "75", "--", "true"});
    EXPECT_EQ(o.status, 75) << o;
    EXPECT_TRUE(o.out.empty()) << "the command did not run: " << o;

    EXPECT_EQ(holder.wait().status, 0);
    o = ctl({"acquire", "one", "--timeout", "5", "--", "/bin/sh", "-c", "echo ran"});
    EXPECT_EQ(o.status, 0) << o;
    EXPECT_EQ(o.out, "ran\n");
}

TEST_F(Ipcctl, AcquireOfMorePermitsThanExistFails) {
    create("small", 2);
    const auto o = ctl({"acquire", "small", "--count", "3", "--", "true"});
    EXPECT_EQ(o.status, 1) << o;
    EXPECT_TRUE(contains(o.err, "more permits requested than semaphore small has")) << o;
}

TEST_F(Ipcctl, StatListsWaitersInArrivalOrder) {
    create("demo", 2);
    Child holder = start({"acquire", "demo", "--count", "2", "--", "/bin/sh", "-c", "echo started; exec cat"});
    ASSERT_EQ(holder.read_line(), "started");
    Child w1 = start({"acquire", "demo", "--", "/bin/sh", "-c", "echo w1"});
    ASSERT_TRUE(eventually("demo", "waiter_count", 1));
    Child w2 = start({"acquire", "demo", "--count", "2", "--", "/bin/sh", "-c", "echo w2"});
    ASSERT_TRUE(eventually("demo", "waiter_count", 2));

    const auto st = stat_json("demo");
    ASSERT_EQ(st["waiters"].size(), 2u) << st.dump();
    EXPECT_EQ(st["waiters"][0]["pid"], w1.pid);
    EXPECT_EQ(st["waiters"][0]["count"], 1);
    EXPECT_EQ(st["waiters"][1]["pid"], w2.pid);
    EXPECT_EQ(st["waiters"][1]["count"], 2);
    auto o = ctl({"status", "--json"});
    EXPECT_EQ(json::parse(o.out)["waiting"], 2) << o;
    o = ctl({"stat", "demo"});
    EXPECT_TRUE(contains(o.out, "Waiters: 2\n")) << o;
    EXPECT_TRUE(contains(o.out, "WANTS")) << o;

    EXPECT_EQ(holder.wait().status, 0);
    const auto r1 = w1.wait();
    EXPECT_EQ(r1.status, 0) << r1;
    EXPECT_EQ(r1.out, "w1\n");
    const auto r2 = w2.wait();
    EXPECT_EQ(r2.status, 0) << r2;
    EXPECT_EQ(r2.out, "w2\n");
}

TEST_F(Ipcctl, WaiterOfADeletedSemaphoreExitsThree) {
    create("doomed", 1);
    Child holder = start({"acquire", "doomed", "--", "/bin/sh", "-c", "echo started; exec cat"});
    ASSERT_EQ(holder.read_line(), "started");
    Child waiter = start({"acquire", "doomed", "--", "/bin/sh", "-c", "echo ran"});
    ASSERT_TRUE(eventually("doomed", "waiter_count", 1));
    auto o = ctl({"delete", "doomed"});
    ASSERT_EQ(o.status, 0) << o;
    o = waiter.wait();
    EXPECT_EQ(o.status, 3) << o;
    EXPECT_EQ(o.err, "ipcctl: semaphore doomed was deleted while waiting for it\n");
    EXPECT_TRUE(o.out.empty()) << o;
    holder.close_stdin();
}

TEST_F(Ipcctl, TerminationSignalsAreForwardedToTheCommand) {
    create("demo", 1);
    // perl, not sh: dash's `wait` can miss a trapped signal that arrives
    // just before it blocks. perl-base is Essential on Debian.
    Child c = start({"acquire", "demo", "--", "/usr/bin/perl", "-e",
                     "$| = 1; $SIG{TERM} = sub { print qq(got TERM\\n); exit 7 }; print qq(started\\n); "
                     "sleep 1000 while 1;"});
    ASSERT_EQ(c.read_line(), "started");
    ASSERT_EQ(::kill(c.pid, SIGTERM), 0);
    const auto o = c.wait();
    EXPECT_EQ(o.status, 7) << o;
    EXPECT_EQ(o.out, "got TERM\n");
    EXPECT_TRUE(all_free("demo", 1));
}

TEST_F(Ipcctl, WaitersGetAnAnswerWhenTheDaemonStops) {
    create("demo", 1);
    Child holder = start({"acquire", "demo", "--", "/bin/sh", "-c", "echo started; exec cat"});
    ASSERT_EQ(holder.read_line(), "started");
    Child waiter = start({"acquire", "demo", "--", "true"});
    ASSERT_TRUE(eventually("demo", "waiter_count", 1));
    EXPECT_EQ(stop_daemon(), 0);
    const auto o = waiter.wait();
    EXPECT_EQ(o.status, 6) << o;
    EXPECT_TRUE(contains(o.err, "ipcctl: ")) << o;
    holder.close_stdin();
    const auto after = ctl({"status"});
    EXPECT_EQ(after.status, 6) << after;
    EXPECT_TRUE(contains(after.err, "no daemon at " + socket_)) << after;
}

// --- sessions, release-session, reload, usage, declared semaphores ------------------------

// The session whose pid is `pid` in `ipcctl --json sessions`, or null.
json session_of(const json& list, pid_t pid) {
    for (const auto& s : list)
        if (s["pid"] == pid) return s;
    return nullptr;
}

TEST_F(Ipcctl, SessionsListsWhoIsConnectedAndWhatTheyHold) {
    create("demo", 3);
    Child holder = start({"acquire", "demo", "--count", "2", "--", "/bin/sh", "-c", "echo started; exec cat"});
    ASSERT_EQ(holder.read_line(), "started");
    Child waiter = start({"acquire", "demo", "--count", "2", "--", "true"});
    ASSERT_TRUE(eventually("demo", "waiter_count", 1));

    auto o = ctl({"--json", "sessions"});
    ASSERT_EQ(o.status, 0) << o;
    const auto list = json::parse(o.out);
    ASSERT_TRUE(list.is_array());
    const json h = session_of(list, holder.pid);
    ASSERT_FALSE(h.is_null()) << list.dump();
    EXPECT_EQ(h["permits_held"], 2);
    EXPECT_EQ(h["waits"], 0);
    EXPECT_EQ(h["uid"], ::getuid());
    EXPECT_EQ(h["gid"], ::getgid());
    EXPECT_EQ(h["user"], my_user());
    EXPECT_EQ(h["command"], "ipcctl");
    EXPECT_EQ(h["self"], false);
    const json w = session_of(list, waiter.pid);
    ASSERT_FALSE(w.is_null()) << list.dump();
    EXPECT_EQ(w["permits_held"], 0);
    EXPECT_EQ(w["waits"], 1);
    int selves = 0;
    for (const auto& s : list) selves += s["self"].get<bool>() ? 1 : 0;
    EXPECT_EQ(selves, 1) << "ipcctl's own session is marked: " << list.dump();
    EXPECT_LT(h["id"].get<unsigned>(), w["id"].get<unsigned>()) << "in id order";

    o = ctl({"sessions"});
    ASSERT_EQ(o.status, 0) << o;
    std::istringstream lines(o.out);
    std::string header;
    std::getline(lines, header);
    std::istringstream hs(header);
    std::vector<std::string> cols{std::istream_iterator<std::string>(hs), {}};
    EXPECT_EQ(cols, (std::vector<std::string>{"ID", "PID", "UID", "COMMAND", "HELD", "WAITS"})) << o;
    const std::vector<std::string> want = {std::to_string(h["id"].get<unsigned>()), std::to_string(holder.pid),
                                           std::to_string(::getuid()), "ipcctl", "2", "0"};
    bool found = false;
    for (std::string line; std::getline(lines, line);) {
        std::istringstream ls(line);
        found = found || std::vector<std::string>{std::istream_iterator<std::string>(ls), {}} == want;
    }
    EXPECT_TRUE(found) << "no row for the holder\n" << o;
    o = ctl({"sessions", "--noheadings"});
    EXPECT_EQ(o.out.find("COMMAND"), std::string::npos) << o;

    EXPECT_EQ(holder.wait().status, 0);
    EXPECT_EQ(waiter.wait().status, 0);
}

TEST_F(Ipcctl, ReleaseSessionGivesBackWhatAStuckClientHolds) {
    create("demo", 3);
    Child holder = start({"acquire", "demo", "--count", "2", "--", "/bin/sh", "-c", "echo started; exec cat"});
    ASSERT_EQ(holder.read_line(), "started");
    auto o = ctl({"--json", "sessions"});
    const json h = session_of(json::parse(o.out), holder.pid);
    ASSERT_FALSE(h.is_null()) << o;
    const std::string id = std::to_string(h["id"].get<unsigned>());

    if (::getuid() == 0) {
        SpawnOptions as_nobody;
        as_nobody.uid = nobody;
        o = ctl({"release-session", id}, as_nobody);
        EXPECT_EQ(o.status, 4) << o;
        EXPECT_EQ(o.err, "ipcctl: permission denied: only root may release a session; run it as root (sudo ipcctl "
                         "release-session " + id + ")\n");
        EXPECT_EQ(stat_json("demo")["available"], 1) << "nothing was released";
    }

    o = ctl({"release-session", id});
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_EQ(o.out, "released session " + id + " (pid " + std::to_string(holder.pid) + ", uid " +
                         std::to_string(::getuid()) + ", ipcctl): 2 permits given back, 0 waits cancelled\n");
    EXPECT_EQ(stat_json("demo")["available"], 3);
    EXPECT_TRUE(session_of(json::parse(ctl({"--json", "sessions"}).out), holder.pid).is_null());

    o = ctl({"release-session", id});
    EXPECT_EQ(o.status, 3) << o;
    EXPECT_EQ(o.err, "ipcctl: no session " + id + ": see 'ipcctl sessions' for the sessions there are\n");
    for (const char* bad : {"0", "x", "-1", "4294967296"}) {
        o = ctl({"release-session", bad});
        EXPECT_EQ(o.status, 2) << bad << "\n" << o;
        EXPECT_TRUE(contains(o.err, "invalid session ID value")) << o;
    }
    holder.close_stdin();
    EXPECT_EQ(holder.wait().status, 0);
}

TEST_F(Ipcctl, ReleaseSessionJsonSaysWhatWasGivenBack) {
    create("demo", 1);
    Child holder = start({"acquire", "demo", "--", "/bin/sh", "-c", "echo started; exec cat"});
    ASSERT_EQ(holder.read_line(), "started");
    Child waiter = start({"acquire", "demo", "--", "true"});
    ASSERT_TRUE(eventually("demo", "waiter_count", 1));
    const json w = session_of(json::parse(ctl({"--json", "sessions"}).out), waiter.pid);
    ASSERT_FALSE(w.is_null());
    const auto o = ctl({"--json", "release-session", std::to_string(w["id"].get<unsigned>())});
    ASSERT_EQ(o.status, 0) << o;
    const auto j = json::parse(o.out);
    EXPECT_EQ(j["session"], w["id"]);
    EXPECT_EQ(j["permits_released"], 0);
    EXPECT_EQ(j["waits_cancelled"], 1);
    EXPECT_EQ(waiter.wait().status, 6) << "the released client sees its connection reset";
    holder.close_stdin();
}

TEST_F(Ipcctl, ReloadAppliesDeclaredSemaphoresWhichDeleteRefuses) {
    write_config("[[semaphore]]\nname = \"cfg\"\npermits = 2\nmode = \"0644\"\n");
    auto o = ctl({"reload"});
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_EQ(o.out, "reloaded: 1 declared semaphore\n");
    o = ctl({"--json", "reload"});
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_EQ(json::parse(o.out)["declared"], 1);

    const auto st = stat_json("cfg");
    EXPECT_EQ(st["declared"], true);
    EXPECT_EQ(st["permits"], 2);
    o = ctl({"stat", "cfg"});
    EXPECT_TRUE(contains(o.out, "Declared:   yes (in ipcd's configuration file)\n")) << o;
    create("mine", 1);
    o = ctl({"list", "-n", "-o", "name,declared"});
    EXPECT_EQ(o.out, "cfg   yes\nmine  no\n");
    EXPECT_EQ(stat_json("mine")["declared"], false);

    o = ctl({"delete", "cfg"});
    EXPECT_EQ(o.status, 1) << o;
    EXPECT_EQ(o.err, "ipcctl: semaphore cfg is declared in ipcd's configuration; remove it from /etc/ipcd/ipcd.conf "
                     "and run 'ipcctl reload'\n");
    EXPECT_EQ(stat_json("cfg")["name"], "cfg") << "still there";
}

TEST_F(Ipcctl, ReloadOfABadFileKeepsTheRunningConfigurationAndPointsAtTheLog) {
    write_config("[[semaphore]]\nname = \"cfg\"\npermits = 2\n");
    ASSERT_EQ(ctl({"reload"}).status, 0);
    write_config("[[semaphore]]\nname = \"cfg\"\npermits = \"many\"\n");
    auto o = ctl({"reload"});
    EXPECT_EQ(o.status, 1) << o;
    EXPECT_EQ(o.err, "ipcctl: ipcd at " + socket_ +
                         " kept its running configuration: the configuration file is invalid; check ipcd's log for "
                         "where and why (e.g. journalctl -u ipcd), fix the file and reload again\n");
    EXPECT_TRUE(o.out.empty()) << o;
    EXPECT_EQ(stat_json("cfg")["permits"], 2) << "the running configuration stays";

    if (::getuid() != 0) GTEST_SKIP() << "needs root to run ipcctl as another uid";
    SpawnOptions as_nobody;
    as_nobody.uid = nobody;
    o = ctl({"reload"}, as_nobody);
    EXPECT_EQ(o.status, 4) << o;
    EXPECT_EQ(o.err, "ipcctl: permission denied: only root may reload ipcd's configuration; run it as root (sudo "
                     "ipcctl reload)\n");
}

TEST_F(Ipcctl, StatusShowsYourUsageAgainstTheLimits) {
    if (::getuid() != 0) GTEST_SKIP() << "needs root to run ipcctl as a limited uid";
    SpawnOptions as_nobody;
    as_nobody.uid = nobody;
    auto o = ctl({"status"}, as_nobody);
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_TRUE(contains(o.out, "\nUsage of nobody (uid 65534):\n"
                                "  Sessions:            1/64\n"
                                "  Semaphores:          0/256 owned\n"
                                "  Waits:               0/1024 pending\n"
                                "  Handles per session: 4096\n"
                                "  May create:          yes\n"))
        << o;
    o = ctl({"--json", "status"}, as_nobody);
    ASSERT_EQ(o.status, 0) << o;
    const auto u = json::parse(o.out)["usage"];
    EXPECT_EQ(u["uid"], nobody);
    EXPECT_EQ(u["sessions"], json::parse(R"({"used": 1, "limit": 64})"));
    EXPECT_EQ(u["semaphores"], json::parse(R"({"used": 0, "limit": 256})"));
    EXPECT_EQ(u["waits"], json::parse(R"({"used": 0, "limit": 1024})"));
    EXPECT_EQ(u["handles_per_session"], 4096);
    EXPECT_EQ(u["may_create"], true);

    // Root asks about nobody, who has a semaphore and a session now.
    ASSERT_EQ(ctl({"create", "theirs", "-p", "1"}, as_nobody).status, 0);
    Child holder = start({"acquire", "theirs", "--", "/bin/sh", "-c", "echo started; exec cat"}, as_nobody);
    ASSERT_EQ(holder.read_line(), "started");
    for (const char* who : {"nobody", "65534"}) {
        o = ctl({"--json", "status", "--user", who});
        ASSERT_EQ(o.status, 0) << o;
        const auto j = json::parse(o.out)["usage"];
        EXPECT_EQ(j["uid"], nobody);
        EXPECT_EQ(j["sessions"]["used"], 1);
        EXPECT_EQ(j["semaphores"]["used"], 1);
    }
    // Root itself: no limits.
    o = ctl({"--json", "status"});
    const auto r = json::parse(o.out)["usage"];
    EXPECT_EQ(r["uid"], 0);
    EXPECT_TRUE(r["sessions"]["limit"].is_null()) << r.dump();
    o = ctl({"status"});
    EXPECT_TRUE(contains(o.out, "  Sessions:            ")) << o;
    EXPECT_TRUE(contains(o.out, " (no limit)\n")) << o;

    o = ctl({"status", "--user", "no-such-user-ipcctl-test"});
    EXPECT_EQ(o.status, 2) << o;
    EXPECT_TRUE(contains(o.err, "unknown user 'no-such-user-ipcctl-test' in --user")) << o;
    holder.close_stdin();
}

}  // namespace
