// tests/daemon_harness.hpp - a real ipcd for each test, forked client
// processes, and a raw client that speaks the protocol by hand.
//
// Synchronisation is always on something real: the daemon's readiness
// notification (sd_notify to a socket of ours), its answers, pipes, waitpid
// and pidfds. eventually() re-asks the daemon until a condition holds; it
// never stands in for an answer.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ipc/channel.hpp"
#include "ipc/mapping.hpp"
#include "ipc/protocol.hpp"
#include "ipc/semaphore.hpp"
#include "ipcd_launch.hpp"

#ifndef IPCD_PATH
#error "IPCD_PATH must name the ipcd binary under test"
#endif

namespace ipcd_test {

using namespace std::chrono_literals;
using ipc::proto::Result;

inline std::error_code code(Result r) { return ipc::proto::make_error_code(r); }

// --- the kernel feature ipcd needs ----------------------------------------------

// io_uring futex waits (IORING_OP_FUTEX_WAIT, Linux 6.7): without them ipcd
// refuses to start, so every daemon test is skipped, with the reason.
inline bool kernel_has_uring_futex_wait() {
    io_uring ring;
    if (io_uring_queue_init(2, &ring, 0) < 0) return false;
    io_uring_probe* p = io_uring_get_probe_ring(&ring);
    const bool ok = p && io_uring_opcode_supported(p, 51 /* IORING_OP_FUTEX_WAIT */);
    if (p) io_uring_free_probe(p);
    io_uring_queue_exit(&ring);
    return ok;
}

class KernelCheck : public ::testing::Environment {
public:
    void SetUp() override {
        if (!kernel_has_uring_futex_wait())
            GTEST_SKIP() << "this kernel lacks io_uring futex waits (Linux 6.7+), which ipcd needs";
    }
};
inline ::testing::Environment* const kernel_check = ::testing::AddGlobalTestEnvironment(new KernelCheck);

// --- processes -------------------------------------------------------------

// Runs `f` in a forked child; its return value (or 99 for an exception) is
// the child's exit status. The child never returns into the test.
template <class F>
pid_t spawn(F&& f) {
    std::fflush(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        // Never outlive the test (a failed assertion or a timeout kill).
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(97);
        int rc = 98;
        try {
            rc = f();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "child %d: %s\n", ::getpid(), e.what());
            rc = 99;
        }
        std::fflush(nullptr);
        ::_exit(rc);
    }
    return pid;
}

// Waits for `pid`: its exit code, or 128 + the signal that killed it.
inline int wait_exit(pid_t pid) {
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}


// Waits up to `timeout` for `pid` to exit; nullopt if it did not.
inline std::optional<int> wait_exit_for(pid_t pid, std::chrono::milliseconds timeout) {
    const int fd = pidfd_open(pid);
    if (fd < 0) return wait_exit(pid);
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    ::close(fd);
    if (r <= 0) return std::nullopt;
    return wait_exit(pid);
}

inline void kill9(pid_t pid) {
    ::kill(pid, SIGKILL);
    wait_exit(pid);
}

// A pipe for "I am ready" / "go on" between a test and its children.
class Pipe {
public:
    Pipe() {
        if (::pipe2(fd_, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    }
    ~Pipe() {
        for (int f : fd_)
            if (f >= 0) ::close(f);
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
    void put(char c = 'x') const { (void)!::write(fd_[1], &c, 1); }
    // Waits up to `timeout` for one byte; nullopt on timeout or EOF.
    std::optional<char> get(std::chrono::milliseconds timeout = 10s) const {
        pollfd p{fd_[0], POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
        char c;
        if (::read(fd_[0], &c, 1) != 1) return std::nullopt;
        return c;
    }
    void close_write() {
        ::close(fd_[1]);
        fd_[1] = -1;
    }
    int read_fd() const { return fd_[0]; }
    int write_fd() const { return fd_[1]; }

private:
    int fd_[2] = {-1, -1};
};

// Re-evaluates `pred` (which asks the daemon something) until it holds.
template <class P>
bool eventually(P&& pred, std::chrono::milliseconds timeout = 10s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(1ms);
    }
}

// --- the daemon --------------------------------------------------------------

inline std::string make_temp_dir() {
    char tmpl[] = "/tmp/ipcd-test-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    // Searchable by everyone: tests drop to other uids and must reach the socket.
    ::chmod(tmpl, 0755);
    return tmpl;
}

class Daemon {
public:
    // Starts ipcd --socket DIR/ipcd.sock [--config /dev/null] [--state-dir
    // DIR/state] ARGS... and waits until it is ready.
    // An empty `dir` means a fresh temporary directory, removed at the end.
    explicit Daemon(std::vector<std::string> args = {}, std::string dir = {}) : args_(std::move(args)) {
        own_dir_ = dir.empty();
        dir_ = own_dir_ ? make_temp_dir() : dir;
        socket_ = dir_ + "/ipcd.sock";
        log_ = dir_ + "/ipcd.log." + std::to_string(++starts());
        start();
    }
    ~Daemon() {
        if (pid_ > 0) kill9(pid_);
        if (::testing::Test::HasFailure()) std::fprintf(stderr, "--- ipcd log (%s) ---\n%s", log_.c_str(), log().c_str());
        if (own_dir_) {
            std::error_code ec;
            std::filesystem::remove_all(dir_, ec);
        }
    }
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    const std::string& socket() const { return socket_; }
    const std::string& dir() const { return dir_; }
    pid_t pid() const { return pid_; }
    std::shared_ptr<ipc::Session> connect() const { return ipc::Session::connect(socket_); }

    // Sends `sig` and waits (at most 10 s) for the daemon to exit.
    int terminate(int sig = SIGTERM) {
        ::kill(pid_, sig);
        auto rc = wait_exit_for(pid_, 10s);
        if (!rc) {
            kill9(pid_);
            pid_ = -1;
            ADD_FAILURE() << "ipcd did not exit within 10 s of signal " << sig;
            return -1;
        }
        pid_ = -1;
        return *rc;
    }
    void kill_hard() {
        kill9(pid_);
        pid_ = -1;
    }
    // The daemon's stderr so far.
    std::string log() const { return read_text(log_); }

private:
    static int& starts() {
        static int n = 0;
        return n;
    }

    void start() {
        std::vector<std::string> argv{IPCD_PATH, "--socket", socket_};
        // Never the machine's /etc/ipcd/ipcd.conf or /var/lib/ipcd: an
        // empty configuration and a state directory of the test's own,
        // unless the test names its own.
        const auto has = [&](const char* opt) {
            return std::find(args_.begin(), args_.end(), opt) != args_.end();
        };
        if (!has("--config") && !has("-c")) argv.insert(argv.end(), {"--config", "/dev/null"});
        if (!has("--state-dir")) argv.insert(argv.end(), {"--state-dir", dir_ + "/state"});
        argv.insert(argv.end(), args_.begin(), args_.end());
        pid_ = launch_ipcd(std::move(argv), log_, dir_ + "/notify." + std::to_string(starts()));
    }

    std::vector<std::string> args_;
    bool own_dir_ = true;
    std::string dir_, socket_, log_;
    pid_t pid_ = -1;
};

// Runs ipcd with `args` to completion (for --help, refusals): exit code and output.
inline std::pair<int, std::string> run_ipcd(std::vector<std::string> args, const std::string& out_file) {
    std::vector<std::string> argv{IPCD_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        const int fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::unsetenv("NOTIFY_SOCKET");
        std::vector<char*> a;
        for (auto& s : argv) a.push_back(s.data());
        a.push_back(nullptr);
        ::execv(a[0], a.data());
        ::_exit(127);
    }
    auto rc = wait_exit_for(pid, 10s);
    if (!rc) {
        kill9(pid);
        rc = -1;
    }
    std::ifstream in(out_file);
    std::stringstream s;
    s << in.rdbuf();
    return {*rc, s.str()};
}

// --- a raw client: the handshake by hand, direct access to the rings ------------

struct RawSession {
    int sock = -1;
    ipc::proto::Hello hello{};
    std::shared_ptr<ipc::Mapping> mapping;
    ipc::Channel requests, replies;
    std::uint64_t next_id = 1;

    RawSession() = default;
    RawSession(const RawSession&) = delete;
    RawSession& operator=(const RawSession&) = delete;
    ~RawSession() {
        if (sock >= 0) ::close(sock);
    }

    static std::unique_ptr<RawSession> connect(const std::string& path) {
        auto s = std::make_unique<RawSession>();
        s->sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        if (::connect(s->sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            throw std::runtime_error("raw connect failed");
        iovec iov{&s->hello, sizeof s->hello};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        if (::recvmsg(s->sock, &msg, MSG_CMSG_CLOEXEC) != sizeof s->hello) throw std::runtime_error("raw hello");
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        if (!c || c->cmsg_type != SCM_RIGHTS) throw std::runtime_error("raw hello without memfd");
        int fd;
        std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
        s->mapping = ipc::Mapping::map_fd(fd);
        ::close(fd);
        const auto* h = static_cast<const ipc::proto::SessionHeader*>(s->mapping->data());
        s->requests = ipc::Channel::open_in(s->mapping, h->request_offset);
        s->replies = ipc::Channel::open_in(s->mapping, h->reply_offset);
        return s;
    }

    // Sends `m` (with a fresh id) and waits for its reply.
    std::optional<ipc::Message> call(ipc::Message m, std::chrono::milliseconds timeout = 5s) {
        m.mr[0] = next_id++;
        if (requests.send_for(m, timeout) != ipc::Status::ok) return std::nullopt;
        ipc::Message r;
        const auto end = ipc::Clock::now() + timeout;
        while (replies.recv_until(r, end) == ipc::Status::ok)
            if (r.mr[0] == m.mr[0]) return r;
        return std::nullopt;
    }

    // True once the daemon has closed its end (it dropped us).
    bool wait_hangup(std::chrono::milliseconds timeout = 10s) const {
        pollfd p{sock, POLLIN | POLLRDHUP, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
        // EOF, or ECONNRESET when the daemon closed with our bytes unread.
        char c;
        const ssize_t n = ::recv(sock, &c, 1, MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno == ECONNRESET);
    }

    ipc::shm::ChannelControl* request_control() {
        return const_cast<ipc::shm::ChannelControl*>(requests.control());
    }
};

inline ipc::Message named_request(ipc::proto::Op op, std::string_view name, std::uint64_t r1 = 0) {
    ipc::Message m = ipc::proto::request(op, 0);
    m.mr[1] = r1;
    ipc::proto::pack_name(m, 2, name);
    return m;
}

inline Result result_of(const ipc::Message& m) { return static_cast<Result>(m.mr[1]); }

}  // namespace ipcd_test
