// bench/daemon_bench.cpp - ipcd, the semaphore daemon, against the semaphores
// a user could take instead, in one run.
//
// Every benchmark call starts its own ipcd (IPCD_PATH, --socket in a fresh
// temporary directory, ready when it says READY=1 through $NOTIFY_SOCKET)
// and stops it with SIGTERM at the end. Peers:
//
//   posix_sem     sem_open'd named semaphore, sem_wait/sem_post: the fastest
//                 there is, but a holder that crashes leaks its permit
//   sysv_undo     System V semop with SEM_UNDO: the kernel's crash-safe one
//   flock         flock(LOCK_EX) / flock(LOCK_UN) on a file (a mutex only)
//   unix_server   what a user would write instead of ipcd: a forked server
//                 process that keeps the count, queues waiters FIFO, gives
//                 back a crashed client's permits, and answers acquire and
//                 release requests over SOCK_SEQPACKET connections (epoll,
//                 blocking reads and writes on both sides)
//
// Families:
//
//   rt/...       one client, back to back: acquire(1) + release(1) of a
//                semaphore with plenty of permits; ns per pair. The client
//                (this process) runs on CPU 0, ipcd or the server on CPU 1,
//                as in channel_bench: every hop crosses CPUs.
//   pinned/...   the same with client and ipcd/server both on CPU 0.
//   tput/...     N client processes (1, 8, 64) on one semaphore of 4 permits,
//                acquire(1) + release(1) in a loop, nothing held in between;
//                pairs per second over a fixed window, and the latency of
//                every acquire (call to return) recorded in each client into
//                a log-linear histogram (~3% buckets) and merged: p50, p99.
//                Unpinned: the scheduler places everyone.
//   idle/...     CPU used by an idle ipcd over a window (default 5 s):
//                utime + stime from /proc/PID/stat, with the threads' exact
//                run time (schedstat) and their context switches alongside;
//                with no session, and with 1,000 idle sessions opened by a
//                few client processes.
//
// At the end the binary prints a table of medians with each peer's ratio to
// ipcd and the targets of docs/performance.md ("## ipcd"), reached or not.
// scripts/bench-daemon.sh runs it with repetitions.
//
// Options of our own (before Google Benchmark's):
//   --daemon_bench_window=SECONDS    tput measuring window (default 1)
//   --daemon_bench_idle=SECONDS      idle measuring window (default 5)
//   --daemon_bench_sessions=N        sessions of idle/ipcd_sessions (1000)
//   --daemon_bench_ipcd=PATH         the ipcd to measure (default: the one
//                                    built with this binary; for what-ifs)
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <semaphore.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bench_util.hpp"
#include "ipc/semaphore.hpp"

#ifndef IPCD_PATH
#error "IPCD_PATH must name the ipcd binary to measure"
#endif

namespace {

using bench::Child;
using bench::Shared;
using bench::Watchdog;
using Clock = std::chrono::steady_clock;

struct Options {
    double window_s = 1.0;  // tput: measuring window
    double idle_s = 5.0;    // idle: measuring window
    int sessions = 1000;    // idle/ipcd_sessions
    std::string ipcd = IPCD_PATH;
} g_opt;

constexpr std::uint32_t kPlenty = 1000;  // permits of the round-trip semaphores
constexpr std::uint32_t kContended = 4;  // permits of the contention runs
constexpr int kMaxClients = 64;

[[noreturn]] void die(const char* what, int err = errno) {
    std::fprintf(stderr, "daemon_bench[%d]: %s: %s\n", static_cast<int>(::getpid()), what, std::strerror(err));
    ::_exit(111);
}

std::int64_t now_ns() {
    timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1'000'000'000LL + t.tv_nsec;
}

void sleep_s(double s) {
    timespec t{static_cast<time_t>(s), static_cast<long>((s - static_cast<double>(static_cast<time_t>(s))) * 1e9)};
    while (::nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

// ---------------------------------------------------------------------------
// Plumbing: a temporary directory, CPU placement, process statistics.

class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/ipcd-bench-XXXXXX";
        if (!::mkdtemp(tmpl)) die("mkdtemp");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

private:
    std::string path_;
};

// Pins `pid` (the main thread of another process, or 0 for us) to `cpu`, or
// lets it run on every CPU with cpu < 0.
void place(pid_t pid, int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cpu >= 0) {
        CPU_SET(cpu, &set);
    } else {
        for (int c = 0; c < CPU_SETSIZE; ++c) CPU_SET(c, &set);
    }
    if (::sched_setaffinity(pid, sizeof set, &set) != 0) die("sched_setaffinity");
}

// CPU time of a whole process (all threads) and its context switches.
struct ProcTimes {
    std::uint64_t ticks = 0;     // utime + stime from /proc/PID/stat (clock ticks)
    std::uint64_t run_ns = 0;    // sum of the threads' schedstat run time
    std::uint64_t switches = 0;  // voluntary + involuntary, all threads
};

ProcTimes proc_times(pid_t pid) {
    ProcTimes t;
    const std::string base = "/proc/" + std::to_string(pid);
    {
        std::ifstream in(base + "/stat");
        std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const auto paren = s.rfind(')');
        if (paren == std::string::npos) die("parse /proc/PID/stat", 0);
        std::istringstream fields(s.substr(paren + 2));  // from field 3 (state)
        std::string f;
        std::uint64_t utime = 0, stime = 0;
        for (int i = 3; i <= 15 && fields >> f; ++i) {
            if (i == 14) utime = std::stoull(f);
            if (i == 15) stime = std::stoull(f);
        }
        t.ticks = utime + stime;
    }
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator(base + "/task", ec)) {
        std::ifstream ss(task.path() / "schedstat");
        std::uint64_t run = 0;
        if (ss >> run) t.run_ns += run;
        std::ifstream st(task.path() / "status");
        std::string line;
        while (std::getline(st, line)) {
            if (line.rfind("voluntary_ctxt_switches:", 0) == 0 || line.rfind("nonvoluntary_ctxt_switches:", 0) == 0)
                t.switches += std::stoull(line.substr(line.find(':') + 1));
        }
    }
    return t;
}

// io_uring futex waits (IORING_OP_FUTEX_WAIT, Linux 6.7): without them ipcd
// refuses to start, and there is nothing to measure.
bool kernel_has_uring_futex_wait() {
    io_uring ring;
    if (io_uring_queue_init(2, &ring, 0) < 0) return false;
    io_uring_probe* p = io_uring_get_probe_ring(&ring);
    const bool ok = p && io_uring_opcode_supported(p, 51 /* IORING_OP_FUTEX_WAIT */);
    if (p) io_uring_free_probe(p);
    io_uring_queue_exit(&ring);
    return ok;
}

void raise_fd_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &rl);
    }
}

// ---------------------------------------------------------------------------
// A private ipcd: started on DIR/ipcd.sock, ready when it sends READY=1 to our
// notification socket, stopped with SIGTERM (and reaped) at the end.

class Ipcd {
public:
    explicit Ipcd(const TempDir& dir, int cpu = -1) : socket_(dir.file("ipcd.sock")), log_(dir.file("ipcd.log")) {
        const std::string notify = dir.file("notify");
        const int nfd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", notify.c_str());
        if (nfd < 0 || ::bind(nfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind notify socket");
        const std::string state = dir.file("state");  // before fork: the child only execs
        std::fflush(nullptr);
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0) die("fork ipcd");
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the benchmark
            if (::getppid() != parent) ::_exit(97);
            const int lfd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (lfd >= 0) ::dup2(lfd, 2);
            ::setenv("NOTIFY_SOCKET", notify.c_str(), 1);
            ::unsetenv("IPCD_SOCKET");
            ::unsetenv("LISTEN_FDS");
            ::unsetenv("LISTEN_PID");
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            ::execl(g_opt.ipcd.c_str(), g_opt.ipcd.c_str(), "--socket", socket_.c_str(), "--config", "/dev/null",
                    "--state-dir", state.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        if (cpu >= 0) place(pid_, cpu);
        pollfd p{nfd, POLLIN, 0};
        char buf[512] = {};
        ssize_t n = -1;
        for (int waited = 0; waited < 10000 && n <= 0; waited += 10) {
            if (::poll(&p, 1, 10) > 0) n = ::recv(nfd, buf, sizeof buf - 1, 0);
            if (n <= 0 && ::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                break;
            }
        }
        ::close(nfd);
        if (n <= 0 || !std::strstr(buf, "READY=1")) {
            std::fprintf(stderr, "daemon_bench: ipcd did not become ready; its log:\n%s", log().c_str());
            die("start ipcd", 0);
        }
    }
    ~Ipcd() {
        if (pid_ > 0) (void)stop();
    }
    Ipcd(const Ipcd&) = delete;
    Ipcd& operator=(const Ipcd&) = delete;

    pid_t pid() const { return pid_; }
    const std::string& socket() const { return socket_; }

    // SIGTERM, then waits up to 10 s (SIGKILL after). True on a clean exit 0.
    bool stop() {
        if (pid_ <= 0) return false;
        ::kill(pid_, SIGTERM);
        int status = 0;
        bool exited = false;
        for (int waited = 0; waited < 10000; waited += 5) {
            const pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_) {
                exited = true;
                break;
            }
            ::usleep(5000);
        }
        if (!exited) {
            ::kill(pid_, SIGKILL);
            while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
            }
        }
        pid_ = -1;
        const bool ok = exited && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok) std::fprintf(stderr, "daemon_bench: ipcd did not stop cleanly; its log:\n%s", log().c_str());
        return ok;
    }

    std::string log() const {
        std::ifstream in(log_);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

private:
    std::string socket_, log_;
    pid_t pid_ = -1;
};

// ---------------------------------------------------------------------------
// The Unix-socket semaphore server a user would write instead of ipcd.
//
// One process, one epoll set, blocking SOCK_SEQPACKET connections: a client
// writes a Request and blocks reading the Reply. The server keeps the count,
// the permits each connection holds (given back when it hangs up, like
// ipcd), and a FIFO of waiting acquires.

struct SockRequest {
    std::uint32_t op;  // kAcquire, kRelease, kStopServer
    std::uint32_t n;
};
struct SockReply {
    std::uint32_t ok;
    std::uint32_t held;
    std::uint64_t token;
};
constexpr std::uint32_t kAcquire = 1, kRelease = 2, kStopServer = 3;

void unix_server(int listen_fd, std::uint32_t permits) {
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    auto watch = [&](int fd) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
    };
    watch(listen_fd);
    struct Conn {
        std::uint32_t held = 0;
        std::uint32_t want = 0;  // > 0: queued
    };
    std::unordered_map<int, Conn> conns;
    std::deque<int> waiters;
    std::uint32_t available = permits;
    std::uint64_t token = 0;

    auto reply = [&](int fd, std::uint32_t ok) {
        const SockReply r{ok, conns[fd].held, token};
        while (::send(fd, &r, sizeof r, MSG_NOSIGNAL) < 0)
            if (errno != EINTR) return;  // the client went away: its hang-up follows
    };
    auto grant_waiters = [&] {
        while (!waiters.empty()) {
            const int fd = waiters.front();
            Conn& c = conns[fd];
            if (c.want > available) return;  // FIFO: the head blocks the rest
            available -= c.want;
            c.held += c.want;
            c.want = 0;
            ++token;
            waiters.pop_front();
            reply(fd, 1);
        }
    };
    auto hang_up = [&](int fd) {
        auto it = conns.find(fd);
        if (it != conns.end()) {
            available += it->second.held;
            if (it->second.want) std::erase(waiters, fd);
            conns.erase(it);
        }
        ::close(fd);
        grant_waiters();
    };

    std::array<epoll_event, 64> evs;
    for (;;) {
        const int n = ::epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            const int fd = evs[static_cast<std::size_t>(i)].data.fd;
            if (fd == listen_fd) {
                for (;;) {
                    const int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
                    if (c < 0) break;  // EAGAIN: the listener is non-blocking
                    conns[c] = Conn{};
                    watch(c);
                }
                continue;
            }
            SockRequest q{};
            const ssize_t r = ::recv(fd, &q, sizeof q, 0);
            if (r != static_cast<ssize_t>(sizeof q)) {
                if (r < 0 && errno == EINTR) continue;
                hang_up(fd);
                continue;
            }
            Conn& c = conns[fd];
            if (q.op == kAcquire && q.n > 0) {
                if (waiters.empty() && q.n <= available) {
                    available -= q.n;
                    c.held += q.n;
                    ++token;
                    reply(fd, 1);
                } else {
                    c.want = q.n;
                    waiters.push_back(fd);
                }
            } else if (q.op == kRelease && q.n > 0 && q.n <= c.held) {
                c.held -= q.n;
                available += q.n;
                reply(fd, 1);
                grant_waiters();
            } else if (q.op == kStopServer) {
                ::_exit(0);
            } else {
                reply(fd, 0);  // over-release or nonsense
            }
        }
    }
}

// The server process, listening on DIR/server.sock before the constructor
// returns (the socket is bound and listening before the fork).
class UnixServer {
public:
    UnixServer(const TempDir& dir, std::uint32_t permits, int cpu) : path_(dir.file("server.sock")) {
        const int lfd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un addr = address();
        if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(lfd, SOMAXCONN) != 0)
            die("server socket");
        child_ = Child([&] { unix_server(lfd, permits); }, cpu);
        ::close(lfd);
    }
    // Asks the server to exit and reaps it; true if it exited cleanly.
    bool stop() {
        const int fd = connect_client();
        const SockRequest q{kStopServer, 0};
        (void)::send(fd, &q, sizeof q, MSG_NOSIGNAL);
        const bool ok = child_.join();
        ::close(fd);
        return ok;
    }
    // A blocking client connection.
    int connect_client() const {
        const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        sockaddr_un addr = address();
        if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("connect to server");
        return fd;
    }

private:
    sockaddr_un address() const {
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
        return a;
    }
    std::string path_;
    Child child_;
};

// One request and its reply; false on a refusal or a broken connection.
bool sock_call(int fd, std::uint32_t op, std::uint32_t n) {
    const SockRequest q{op, n};
    if (::send(fd, &q, sizeof q, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof q)) return false;
    SockReply r{};
    ssize_t got;
    while ((got = ::recv(fd, &r, sizeof r, 0)) < 0 && errno == EINTR) {
    }
    return got == static_cast<ssize_t>(sizeof r) && r.ok == 1;
}

// ---------------------------------------------------------------------------
// The kernel's semaphores.

union SemUn {
    int val;
    semid_ds* buf;
    unsigned short* array;
};

class SysvSem {
public:
    explicit SysvSem(int value) {
        id_ = ::semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
        if (id_ < 0) die("semget");
        SemUn arg{};
        arg.val = value;
        if (::semctl(id_, 0, SETVAL, arg) != 0) die("semctl SETVAL");
    }
    ~SysvSem() { ::semctl(id_, 0, IPC_RMID); }
    SysvSem(const SysvSem&) = delete;
    SysvSem& operator=(const SysvSem&) = delete;
    bool op(short delta) const noexcept {
        sembuf b{0, delta, SEM_UNDO};
        while (::semop(id_, &b, 1) != 0)
            if (errno != EINTR) return false;
        return true;
    }

private:
    int id_ = -1;
};

// A named POSIX semaphore, unlinked as soon as it is open.
class PosixSem {
public:
    explicit PosixSem(unsigned value) {
        const std::string name = "/ipcd-bench-" + std::to_string(::getpid());
        sem_ = ::sem_open(name.c_str(), O_CREAT | O_EXCL, 0600, value);
        if (sem_ == SEM_FAILED) die("sem_open");
        ::sem_unlink(name.c_str());
    }
    ~PosixSem() { ::sem_close(sem_); }
    PosixSem(const PosixSem&) = delete;
    PosixSem& operator=(const PosixSem&) = delete;
    sem_t* get() const noexcept { return sem_; }

private:
    sem_t* sem_;
};

// ---------------------------------------------------------------------------
// Latency samples

// Log-linear histogram of nanoseconds: exact below 32, then 32 buckets per
// power of two (a bucket is at most 1/32 of its value wide).
struct Histogram {
    static constexpr int kSub = 5;
    static constexpr std::size_t kBuckets = 32 + 59 * 32;
    std::array<std::uint64_t, kBuckets> n{};

    static std::size_t index(std::uint64_t v) noexcept {
        if (v < 32) return static_cast<std::size_t>(v);
        const int msb = 63 - __builtin_clzll(v);
        const int shift = msb - kSub;
        return 32 + static_cast<std::size_t>(shift) * 32 + static_cast<std::size_t>((v >> shift) - 32);
    }
    static double middle(std::size_t i) noexcept {
        if (i < 32) return static_cast<double>(i);
        const std::size_t shift = (i - 32) / 32;
        const std::uint64_t top = 32 + (i - 32) % 32;
        return static_cast<double>(top << shift) + static_cast<double>((std::uint64_t{1} << shift) / 2);
    }
    void add(std::uint64_t v) noexcept { ++n[std::min(index(v), kBuckets - 1)]; }
    template <class Counts>
    static double percentile(const Counts& n, double p) noexcept {
        std::uint64_t total = 0;
        for (const auto& c : n) total += c;
        if (total == 0) return 0;
        const auto want = static_cast<std::uint64_t>(p * static_cast<double>(total - 1)) + 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < n.size(); ++i) {
            seen += n[i];
            if (seen >= want) return middle(i);
        }
        return middle(n.size() - 1);
    }
    double percentile(double p) const noexcept { return percentile(n, p); }
};

struct SharedHistogram {
    std::array<std::atomic<std::uint64_t>, Histogram::kBuckets> n{};
    void merge(const Histogram& h) noexcept {
        // Relaxed: the parent reads after reaping every child.
        for (std::size_t i = 0; i < h.n.size(); ++i)
            if (h.n[i]) n[i].fetch_add(h.n[i], std::memory_order_relaxed);
    }
    double percentile(double p) const noexcept {
        std::array<std::uint64_t, Histogram::kBuckets> copy;
        for (std::size_t i = 0; i < n.size(); ++i) copy[i] = n[i].load(std::memory_order_relaxed);
        return Histogram::percentile(copy, p);
    }
};

// The loop of every round-trip benchmark: pair() is one acquire + release
// (false: failed). Every 64th pair is also timed alone, for the p50 and p99
// columns (each sample includes two clock reads, about 40 ns; the mean of
// the table is the loop's own time, without them).
template <class Pair>
void pairs_loop(benchmark::State& state, const char* what, Pair&& pair) {
    Histogram h;
    std::uint64_t n = 0;
    for (auto _ : state) {
        bool ok;
        if ((++n & 63) == 0) [[unlikely]] {
            const std::int64_t t0 = now_ns();
            ok = pair();
            h.add(static_cast<std::uint64_t>(now_ns() - t0));
        } else {
            ok = pair();
        }
        if (!ok) [[unlikely]] {
            state.SkipWithError(what);
            break;
        }
    }
    state.counters["p50_ns"] = h.percentile(0.50);
    state.counters["p99_ns"] = h.percentile(0.99);
}

// ---------------------------------------------------------------------------
// Round trips: acquire(1) + release(1), back to back, one client (this
// process, CPU 0); the daemon or server on `server_cpu`.

void rt_ipcd(benchmark::State& state, int server_cpu) {
    Watchdog wd("rt/ipcd");
    TempDir dir;
    Ipcd daemon(dir, server_cpu);
    {
        bench::PinToCpu pin(0);
        auto session = ipc::Session::connect(daemon.socket());
        auto sem = ipc::Semaphore::create(session, "bench", kPlenty);
        std::error_code ec;
        auto pair = [&] {
            ec = sem.acquire(1);
            if (!ec) ec = sem.release(1);
            return !ec;
        };
        for (int w = 0; w < 64; ++w)
            if (!pair()) return state.SkipWithError(("ipcd: " + ec.message()).c_str());
        pairs_loop(state, "ipcd: acquire or release failed", pair);
    }
    if (!daemon.stop()) state.SkipWithError("ipcd did not stop cleanly");
}

void rt_unix_server(benchmark::State& state, int server_cpu) {
    Watchdog wd("rt/unix_server");
    TempDir dir;
    bench::PinToCpu pin(0);
    UnixServer server(dir, kPlenty, server_cpu);
    const int fd = server.connect_client();
    auto pair = [&] { return sock_call(fd, kAcquire, 1) && sock_call(fd, kRelease, 1); };
    for (int w = 0; w < 64; ++w)
        if (!pair()) return state.SkipWithError("unix server refused or went away");
    pairs_loop(state, "unix server refused or went away", pair);
    ::close(fd);
    if (!server.stop()) state.SkipWithError("unix server failed");
}

void rt_posix_sem(benchmark::State& state) {
    Watchdog wd("rt/posix_sem");
    bench::PinToCpu pin(0);
    PosixSem sem(kPlenty);
    pairs_loop(state, "sem_wait/sem_post failed",
               [&] { return ::sem_wait(sem.get()) == 0 && ::sem_post(sem.get()) == 0; });
}

void rt_sysv(benchmark::State& state) {
    Watchdog wd("rt/sysv_undo");
    bench::PinToCpu pin(0);
    SysvSem sem(kPlenty);
    pairs_loop(state, "semop failed", [&] { return sem.op(-1) && sem.op(1); });
}

void rt_flock(benchmark::State& state) {
    Watchdog wd("rt/flock");
    TempDir dir;
    bench::PinToCpu pin(0);
    const int fd = ::open(dir.file("lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) die("open lock file");
    pairs_loop(state, "flock failed", [&] { return ::flock(fd, LOCK_EX) == 0 && ::flock(fd, LOCK_UN) == 0; });
    ::close(fd);
}

// ---------------------------------------------------------------------------
// Contention: N client processes on one semaphore of kContended permits.

struct alignas(64) PaddedCount {
    std::atomic<std::uint64_t> v{0};
};

// Phases: 0 set-up, 1 warm-up (not counted), 2 measuring, 3 stop.
struct Contention {
    alignas(64) std::atomic<std::uint32_t> ready{0};
    std::atomic<std::uint32_t> failed{0};
    alignas(64) std::atomic<std::uint32_t> phase{0};
    PaddedCount pairs[kMaxClients];
    SharedHistogram latency;
};

// Under SCHED_FIFO (scripts/bench-daemon.sh SCHED=fifo) a client that never
// blocks (a semop that always finds a permit) would keep its CPU forever from
// a parent of the same priority, which could then never end the window. So
// the parent outranks the clients it has forked, for as long as they run.
class OutrankChildren {
public:
    OutrankChildren() {
        const int policy = ::sched_getscheduler(0);
        if ((policy != SCHED_FIFO && policy != SCHED_RR) || ::sched_getparam(0, &saved_) != 0) return;
        sched_param higher = saved_;
        higher.sched_priority = std::min(saved_.sched_priority + 1, ::sched_get_priority_max(policy));
        raised_ = ::sched_setparam(0, &higher) == 0;
    }
    ~OutrankChildren() {
        if (raised_) ::sched_setparam(0, &saved_);
    }
    OutrankChildren(const OutrankChildren&) = delete;
    OutrankChildren& operator=(const OutrankChildren&) = delete;

private:
    sched_param saved_{};
    bool raised_ = false;
};

// Runs `clients` children; each calls connect() once, then op(acquire) in a
// loop until told to stop. `connect` returns a per-client callable
// `bool op(bool acquire)`.
template <class Connect>
void contention(benchmark::State& state, int clients, Connect&& connect) {
    Shared<Contention> co;
    std::vector<Child> children;
    children.reserve(static_cast<std::size_t>(clients));
    for (int c = 0; c < clients; ++c) {
        children.emplace_back([&, c] {
            auto op = connect();
            if (!op) {
                co->failed.fetch_add(1);
                ::_exit(2);
            }
            co->ready.fetch_add(1, std::memory_order_release);
            while (co->phase.load(std::memory_order_acquire) == 0) bench::futex_wait(co->phase, 0);
            Histogram h;
            std::uint64_t pairs = 0;
            for (std::uint32_t ph; (ph = co->phase.load(std::memory_order_relaxed)) != 3;) {
                const std::int64_t t0 = now_ns();
                if (!(*op)(true)) {
                    co->failed.fetch_add(1);
                    ::_exit(3);
                }
                const std::int64_t t1 = now_ns();
                if (!(*op)(false)) {
                    co->failed.fetch_add(1);
                    ::_exit(4);
                }
                if (ph == 2) {
                    ++pairs;
                    h.add(static_cast<std::uint64_t>(t1 - t0));
                }
            }
            co->pairs[c].v.store(pairs, std::memory_order_relaxed);
            co->latency.merge(h);
        });
    }
    OutrankChildren outrank;  // after the forks: the clients keep the old priority
    // Sleep-poll: the parent must not take a CPU from the clients.
    const auto give_up = Clock::now() + std::chrono::seconds(60);
    while (co->ready.load(std::memory_order_acquire) < static_cast<std::uint32_t>(clients) &&
           co->failed.load() == 0 && Clock::now() < give_up)
        ::usleep(1000);
    if (co->ready.load() < static_cast<std::uint32_t>(clients)) {
        co->phase.store(3);
        bench::futex_wake(co->phase, INT32_MAX);
        return state.SkipWithError("a client could not connect");
    }
    co->phase.store(1, std::memory_order_release);
    bench::futex_wake(co->phase, INT32_MAX);
    sleep_s(std::min(0.1, g_opt.window_s / 4));
    double seconds = 0;
    for (auto _ : state) {
        const auto t0 = Clock::now();
        co->phase.store(2, std::memory_order_relaxed);
        sleep_s(g_opt.window_s);
        co->phase.store(3, std::memory_order_relaxed);
        seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        state.SetIterationTime(seconds);
    }
    bool ok = true;
    for (auto& ch : children) ok = ch.join() && ok;
    if (!ok || co->failed.load() != 0) return state.SkipWithError("a client failed");
    std::uint64_t pairs = 0;
    for (int c = 0; c < clients; ++c) pairs += co->pairs[c].v.load();
    state.SetItemsProcessed(static_cast<std::int64_t>(pairs));
    state.counters["p50_us"] = co->latency.percentile(0.50) / 1e3;
    state.counters["p99_us"] = co->latency.percentile(0.99) / 1e3;
}

void tput_ipcd(benchmark::State& state, int clients) {
    Watchdog wd("tput/ipcd");
    TempDir dir;
    Ipcd daemon(dir);
    {
        auto owner = ipc::Session::connect(daemon.socket());
        auto sem = ipc::Semaphore::create(owner, "bench", kContended);
        contention(state, clients, [&] {
            // One session per client process, as a user would have.
            struct Op {
                std::shared_ptr<ipc::Session> s;
                ipc::Semaphore sem;
                bool operator()(bool acquire) { return !(acquire ? sem.acquire(1) : sem.release(1)); }
            };
            std::optional<Op> op;
            try {
                auto s = ipc::Session::connect(daemon.socket());
                auto h = ipc::Semaphore::open(s, "bench");
                op.emplace(Op{std::move(s), std::move(h)});
            } catch (const std::exception& e) {
                std::fprintf(stderr, "daemon_bench: client: %s\n", e.what());
            }
            return op;
        });
    }
    if (!daemon.stop()) state.SkipWithError("ipcd did not stop cleanly");
}

void tput_unix_server(benchmark::State& state, int clients) {
    Watchdog wd("tput/unix_server");
    TempDir dir;
    UnixServer server(dir, kContended, -1);
    contention(state, clients, [&] {
        struct Op {
            int fd;
            bool operator()(bool acquire) const { return sock_call(fd, acquire ? kAcquire : kRelease, 1); }
        };
        return std::optional<Op>(Op{server.connect_client()});
    });
    if (!server.stop()) state.SkipWithError("unix server failed");
}

void tput_sysv(benchmark::State& state, int clients) {
    Watchdog wd("tput/sysv_undo");
    SysvSem sem(kContended);
    contention(state, clients, [&] {
        struct Op {
            const SysvSem* sem;
            bool operator()(bool acquire) const { return sem->op(acquire ? -1 : 1); }
        };
        return std::optional<Op>(Op{&sem});
    });
}

// ---------------------------------------------------------------------------
// Idle: what ipcd costs while nobody calls it.

void idle_ipcd(benchmark::State& state, int sessions) {
    Watchdog wd("idle/ipcd", static_cast<unsigned>(g_opt.idle_s) + 120);
    TempDir dir;
    Ipcd daemon(dir);
    // A few client processes hold the sessions open and idle until the
    // parent closes the pipe.
    int gate[2];
    if (::pipe2(gate, O_CLOEXEC) != 0) die("pipe2");
    Shared<Contention> co;  // ready / failed only
    const int procs = sessions == 0 ? 0 : std::min(4, sessions);
    std::vector<Child> holders;
    for (int p = 0; p < procs; ++p) {
        const int mine = sessions / procs + (p < sessions % procs ? 1 : 0);
        holders.emplace_back([&, mine] {
            ::close(gate[1]);
            raise_fd_limit();
            std::vector<std::shared_ptr<ipc::Session>> open;
            try {
                for (int i = 0; i < mine; ++i) open.push_back(ipc::Session::connect(daemon.socket()));
            } catch (const std::exception& e) {
                std::fprintf(stderr, "daemon_bench: idle client: %s\n", e.what());
                co->failed.fetch_add(1);
                ::_exit(2);
            }
            co->ready.fetch_add(1, std::memory_order_release);
            char c;
            while (::read(gate[0], &c, 1) < 0 && errno == EINTR) {
            }
            ::_exit(0);
        });
    }
    ::close(gate[0]);
    const auto give_up = Clock::now() + std::chrono::seconds(60);
    while (co->ready.load() < static_cast<std::uint32_t>(procs) && co->failed.load() == 0 && Clock::now() < give_up)
        ::usleep(1000);
    bool ok = co->ready.load() == static_cast<std::uint32_t>(procs);
    std::uint64_t counted = 0;
    if (ok) {
        // The daemon's own count, from a session of ours (closed before
        // measuring, and its departure settled by the status call's answer).
        auto s = ipc::Session::connect(daemon.socket());
        counted = s->status().sessions - 1;
        ok = counted == static_cast<std::uint64_t>(sessions);
    }
    ProcTimes before{}, after{};
    double seconds = 0;
    for (auto _ : state) {
        if (!ok) {
            state.SkipWithError("the idle sessions did not all connect");
            break;
        }
        // Settle: our own status session's hang-up handled, and the one
        // STATUS= update ipcd owes systemd for the last change in sessions
        // sent (it rate-limits them to one a second, with no timer after).
        sleep_s(1.2);
        before = proc_times(daemon.pid());
        const auto t0 = Clock::now();
        sleep_s(g_opt.idle_s);
        after = proc_times(daemon.pid());
        seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        state.SetIterationTime(seconds);
    }
    ::close(gate[1]);
    for (auto& h : holders) ok = h.join() && ok;
    if (!daemon.stop()) return state.SkipWithError("ipcd did not stop cleanly");
    if (!ok) return state.SkipWithError("an idle client failed");
    const double tick_s = 1.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
    const auto ticks = after.ticks - before.ticks;
    state.counters["cpu_pct"] = static_cast<double>(ticks) * tick_s / seconds * 100;
    state.counters["ticks"] = static_cast<double>(ticks);
    state.counters["run_us"] = static_cast<double>(after.run_ns - before.run_ns) / 1e3;
    state.counters["switches"] = static_cast<double>(after.switches - before.switches);
    state.counters["sessions"] = static_cast<double>(counted);
}

// ---------------------------------------------------------------------------
// The table: medians over repetitions, each peer's ratio to ipcd, targets.

enum class Metric { time, rate, cpu };

struct Meta {
    std::string group;
    Metric metric;
    std::string ref;  // the ipcd benchmark this row is compared with; empty: ipcd's own row
    std::string what;
};

struct Target {
    std::string what;
    std::string ours;
    std::string peer;     // empty: an absolute bound on `ours`' figure
    double bound;         // ours / peer (or ours) must be <= bound
};

std::vector<std::pair<std::string, Meta>>& registry() {
    static std::vector<std::pair<std::string, Meta>> v;
    return v;
}

const Meta* find_meta(const std::string& name) {
    for (const auto& [n, m] : registry())
        if (n == name) return &m;
    return nullptr;
}

double median_of(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

class Reporter : public benchmark::ConsoleReporter {
public:
    Reporter(std::vector<Target> targets, OutputOptions opts) : ConsoleReporter(opts), targets_(std::move(targets)) {}

    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& r : runs) {
            if (r.run_type != Run::RT_Iteration || r.error_occurred || r.iterations == 0) continue;
            const std::string name = r.run_name.function_name;
            const Meta* m = find_meta(name);
            if (!m) continue;
            auto& s = samples_[name];
            switch (m->metric) {
                case Metric::time:
                    s.main.push_back(r.real_accumulated_time / static_cast<double>(r.iterations) * 1e9);
                    break;
                case Metric::rate:
                    if (auto c = r.counters.find("items_per_second"); c != r.counters.end())
                        s.main.push_back(c->second.value);
                    break;
                case Metric::cpu:
                    if (auto c = r.counters.find("cpu_pct"); c != r.counters.end()) s.main.push_back(c->second.value);
                    break;
            }
            for (const char* k : {"p50_ns", "p99_ns", "p50_us", "p99_us", "ticks", "run_us", "switches"})
                if (auto c = r.counters.find(k); c != r.counters.end()) s.extra[k].push_back(c->second.value);
        }
    }

    void Finalize() override {
        ConsoleReporter::Finalize();
        GetOutputStream().flush();
        if (samples_.empty()) return;
        std::FILE* out = stdout;
        std::size_t runs = 0;
        for (const auto& [k, v] : samples_) runs = std::max(runs, v.main.size());
        std::fprintf(out,
                     "\nMedians of %zu run(s) each; best = best run; spread = (max - min) / median.\n"
                     "'ipcd x' = how many times better ipcd's figure in 'vs' is (medians): peer time / ipcd\n"
                     "time, or ipcd rate / peer rate; below 1 the peer is better.\n",
                     runs);
        std::string group;
        for (const auto& [name, m] : registry()) {
            if (!samples_.count(name)) continue;
            const Samples& s = samples_.at(name);
            if (m.group != group) {
                group = m.group;
                const char* head = m.metric == Metric::time ? "per pair" : m.metric == Metric::rate ? "pairs/s" : "CPU";
                std::fprintf(out, "\n%s\n  %-26s %11s %11s %7s  %-22s %7s", group.c_str(), "benchmark", head, "best",
                             "spread", "vs", "ipcd x");
                if (m.metric == Metric::time) std::fprintf(out, " %9s %9s", "p50 pair", "p99 pair");
                if (m.metric == Metric::rate) std::fprintf(out, " %9s %9s", "p50 acq", "p99 acq");
                if (m.metric == Metric::cpu) std::fprintf(out, " %6s %9s %8s", "ticks", "run time", "switches");
                std::fprintf(out, "  %s\n", "what");
            }
            const double v = median_of(s.main);
            char ratio[32] = "";
            if (!m.ref.empty() && samples_.count(m.ref)) {
                const double r = median_of(samples_.at(m.ref).main);
                std::snprintf(ratio, sizeof ratio, "%.3g", m.metric == Metric::time ? v / r : r / v);
            }
            std::fprintf(out, "  %-26s %11s %11s %6.0f%%  %-22s %7s", name.c_str(), format(m.metric, v).c_str(),
                         format(m.metric, best(s.main, m.metric)).c_str(), spread(s.main) * 100, m.ref.c_str(),
                         ratio);
            auto extra = [&](const char* k) { return s.extra.count(k) ? median_of(s.extra.at(k)) : 0.0; };
            if (m.metric == Metric::time) {
                std::fprintf(out, " %9s %9s", format(Metric::time, extra("p50_ns")).c_str(),
                             format(Metric::time, extra("p99_ns")).c_str());
            }
            if (m.metric == Metric::rate) {
                char p50[32], p99[32];
                std::snprintf(p50, sizeof p50, "%.1f us", extra("p50_us"));
                std::snprintf(p99, sizeof p99, "%.1f us", extra("p99_us"));
                std::fprintf(out, " %9s %9s", p50, p99);
            }
            if (m.metric == Metric::cpu) {
                char run[32];
                std::snprintf(run, sizeof run, "%.0f us", extra("run_us"));
                std::fprintf(out, " %6.0f %9s %8.0f", extra("ticks"), run, extra("switches"));
            }
            std::fprintf(out, "  %s\n", m.what.c_str());
        }
        std::fprintf(out, "\n%-58s %9s %9s\n", "Targets (ratio = ipcd / peer on time per pair)", "value", "target");
        for (const Target& t : targets_) {
            if (!samples_.count(t.ours) || (!t.peer.empty() && !samples_.count(t.peer))) continue;
            const double ours = median_of(samples_.at(t.ours).main);
            double v;
            if (t.peer.empty()) {
                // Absolute: clock ticks of CPU time over the window (0 = idle).
                v = median_of(samples_.at(t.ours).extra["ticks"]);
            } else {
                v = ours / median_of(samples_.at(t.peer).main);
            }
            char bound[32];
            std::snprintf(bound, sizeof bound, "<= %.3g", t.bound);
            std::fprintf(out, "  %-56s %9.3g %9s  %s\n", t.what.c_str(), v, bound,
                         v <= t.bound ? "reached" : "NOT REACHED");
        }
        std::fflush(out);
    }

private:
    struct Samples {
        std::vector<double> main;
        std::map<std::string, std::vector<double>> extra;
    };
    static std::string format(Metric m, double v) {
        char buf[32];
        switch (m) {
            case Metric::time:
                if (v >= 10'000)
                    std::snprintf(buf, sizeof buf, "%.1f us", v / 1e3);
                else
                    std::snprintf(buf, sizeof buf, "%.0f ns", v);
                break;
            case Metric::rate: std::snprintf(buf, sizeof buf, "%.0f k/s", v / 1e3); break;
            case Metric::cpu: std::snprintf(buf, sizeof buf, "%.2f %%", v); break;
        }
        return buf;
    }
    static double best(const std::vector<double>& v, Metric m) {
        return m == Metric::rate ? *std::max_element(v.begin(), v.end()) : *std::min_element(v.begin(), v.end());
    }
    static double spread(const std::vector<double>& v) {
        const double med = median_of(v);
        if (med == 0) return 0;
        auto [lo, hi] = std::minmax_element(v.begin(), v.end());
        return (*hi - *lo) / med;
    }

    std::vector<Target> targets_;
    std::map<std::string, Samples> samples_;
};

benchmark::internal::Benchmark* add(const std::string& name, Meta meta, std::function<void(benchmark::State&)> fn) {
    registry().emplace_back(name, meta);
    auto* b = benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State& s) { fn(s); });
    if (meta.metric == Metric::time)
        b->UseRealTime()->Unit(benchmark::kNanosecond);
    else
        b->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
    return b;
}

// Takes our own --daemon_bench_* options out of argv.
void parse_options(int& argc, char** argv) {
    int out = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        auto value = [&](std::string_view key) -> const char* {
            return a.rfind(key, 0) == 0 ? argv[i] + key.size() : nullptr;
        };
        if (const char* v = value("--daemon_bench_window=")) {
            g_opt.window_s = std::atof(v);
        } else if (const char* w = value("--daemon_bench_idle=")) {
            g_opt.idle_s = std::atof(w);
        } else if (const char* n = value("--daemon_bench_sessions=")) {
            g_opt.sessions = std::atoi(n);
        } else if (const char* p = value("--daemon_bench_ipcd=")) {
            g_opt.ipcd = p;
        } else {
            argv[out++] = argv[i];
        }
    }
    argc = out;
    if (g_opt.window_s <= 0 || g_opt.idle_s <= 0 || g_opt.sessions < 0) {
        std::fprintf(stderr, "daemon_bench: --daemon_bench_window and _idle must be > 0, _sessions >= 0\n");
        std::exit(2);
    }
}

}  // namespace

int main(int argc, char** argv) {
    parse_options(argc, argv);
    if (!kernel_has_uring_futex_wait()) {
        std::fprintf(stderr, "daemon_bench: skipped: this kernel lacks io_uring futex waits (Linux 6.7+), "
                             "which ipcd needs\n");
        return 77;
    }
    ::signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    const char* rt = "Acquire+release, one client back to back: client CPU 0, server CPU 1";
    add("rt/ipcd", {rt, Metric::time, "", "ipcd: Semaphore::acquire(1) + release(1)"},
        [](auto& s) { rt_ipcd(s, 1); });
    add("rt/unix_server", {rt, Metric::time, "rt/ipcd", "Unix-socket server, SEQPACKET, epoll"},
        [](auto& s) { rt_unix_server(s, 1); });
    add("rt/sysv_undo", {rt, Metric::time, "rt/ipcd", "System V semop, SEM_UNDO (crash-safe)"},
        [](auto& s) { rt_sysv(s); });
    add("rt/posix_sem", {rt, Metric::time, "rt/ipcd", "POSIX named sem_wait/sem_post (leaks)"},
        [](auto& s) { rt_posix_sem(s); });
    add("rt/flock", {rt, Metric::time, "rt/ipcd", "flock LOCK_EX/LOCK_UN (a mutex)"}, [](auto& s) { rt_flock(s); });

    const char* pin = "Pinned: client and server both on CPU 0";
    add("pinned/rt/ipcd", {pin, Metric::time, "", "ipcd acquire(1) + release(1)"}, [](auto& s) { rt_ipcd(s, 0); });
    add("pinned/rt/unix_server", {pin, Metric::time, "pinned/rt/ipcd", "Unix-socket server"},
        [](auto& s) { rt_unix_server(s, 0); });

    for (int n : {1, 8, 64}) {
        const std::string group = "Contention: " + std::to_string(n) + " client process" + (n > 1 ? "es" : "") +
                                  ", one semaphore of 4 permits, unpinned";
        const std::string ours = "tput/ipcd/" + std::to_string(n);
        add(ours, {group, Metric::rate, "", "ipcd"}, [n](auto& s) { tput_ipcd(s, n); });
        add("tput/unix_server/" + std::to_string(n), {group, Metric::rate, ours, "Unix-socket server"},
            [n](auto& s) { tput_unix_server(s, n); });
        add("tput/sysv_undo/" + std::to_string(n), {group, Metric::rate, ours, "System V semop, SEM_UNDO"},
            [n](auto& s) { tput_sysv(s, n); });
    }

    const char* idle = "Idle ipcd: CPU over the window (/proc/PID/stat utime+stime)";
    add("idle/ipcd_no_sessions", {idle, Metric::cpu, "", "no session"}, [](auto& s) { idle_ipcd(s, 0); });
    add("idle/ipcd_sessions", {idle, Metric::cpu, "", std::to_string(g_opt.sessions) + " idle sessions, 4 processes"},
        [](auto& s) { idle_ipcd(s, g_opt.sessions); });

    bool color = ::isatty(STDOUT_FILENO);
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--benchmark_color=false") color = false;
        if (a == "--benchmark_color=true") color = true;
    }
    Reporter reporter(
        {
            {"one client: ipcd <= 1/5 of the Unix-socket server", "rt/ipcd", "rt/unix_server", 0.2},
            {"one client: ipcd <= 5 x SysV semop + SEM_UNDO", "rt/ipcd", "rt/sysv_undo", 5.0},
            {"pinned: ipcd no worse than the Unix-socket server", "pinned/rt/ipcd", "pinned/rt/unix_server", 1.0},
            {"idle, no session: 0 clock ticks of CPU", "idle/ipcd_no_sessions", "", 0},
            {"idle, " + std::to_string(g_opt.sessions) + " sessions: 0 clock ticks of CPU", "idle/ipcd_sessions", "",
             0},
        },
        color ? benchmark::ConsoleReporter::OO_ColorTabular : benchmark::ConsoleReporter::OO_Tabular);

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
