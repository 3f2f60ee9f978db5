// tests/channel_test_util.hpp - helpers shared by the channel tests and by
// channel_peer, the separately started program they exec.
//
// Nothing here uses GoogleTest: the same producer and consumer loops run in a
// test thread, in a forked child and in an exec'd peer. They report failures
// on stderr (which ctest --output-on-failure shows) and through an exit code.
//
//   make_msg / well_formed   messages that carry (producer id, sequence number)
//   ScopedName               a unique channel name, removed from /dev/shm at the end
//   Tally                    per-(producer, seq) delivery counters in a shared memfd
//   produce / consume        the workload loops, every blocking call bounded in time
//   Process                  a forked or posix_spawn'ed child, waited for with a pidfd
//   Pipe, send_fd / recv_fd  synchronisation and descriptor passing
//   channel_image, ...       raw segment bytes for the validation tests
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "ipc/channel.hpp"
#include "ipc/mapping.hpp"
#include "ipc/shm_layout.hpp"

extern char** environ;

namespace ipc {
// GoogleTest prints these by name (found by argument-dependent lookup), which
// also keeps the parameter part of discovered CTest names readable.
inline void PrintTo(Status s, std::ostream* os) { *os << to_string(s); }
inline void PrintTo(ChannelKind k, std::ostream* os) { *os << (k == ChannelKind::spsc ? "spsc" : "mpmc"); }
}  // namespace ipc

namespace ipc::test {

using namespace std::chrono_literals;

// --- Messages ----------------------------------------------------------------

inline constexpr std::uint32_t test_label = 0x7e57;

// Registers 2..6 hold a pattern derived from (producer, seq), so a torn copy,
// a stale slot or a message delivered into the wrong place is caught.
inline std::uint64_t pattern(std::uint64_t producer, std::uint64_t seq, unsigned i) noexcept {
    return (seq * 0x9E3779B97F4A7C15ull) ^ (producer << 40) ^ (i * 0x0101010101010101ull);
}

inline Message make_msg(std::uint32_t producer, std::uint64_t seq) noexcept {
    Message m;
    m.tag = Message::make_tag(test_label, message_registers, producer & Message::flags_mask);
    m.mr[0] = producer;
    m.mr[1] = seq;
    for (unsigned i = 2; i < message_registers; ++i) m.mr[i] = pattern(producer, seq, i);
    return m;
}

inline std::uint32_t producer_of(const Message& m) noexcept { return static_cast<std::uint32_t>(m.mr[0]); }
inline std::uint64_t seq_of(const Message& m) noexcept { return m.mr[1]; }

inline bool well_formed(const Message& m) noexcept {
    if (!m.valid() || m.label() != test_label || m.words() != message_registers ||
        m.flags() != (m.mr[0] & Message::flags_mask))
        return false;
    for (unsigned i = 2; i < message_registers; ++i)
        if (m.mr[i] != pattern(m.mr[0], m.mr[1], i)) return false;
    return true;
}

inline bool same_bytes(const Message& a, const Message& b) noexcept {
    return std::memcmp(&a, &b, sizeof(Message)) == 0;
}

// --- Errors --------------------------------------------------------------------

// "generic:2 (No such file or directory)", "ipc:3 (...)": comparable and readable.
inline std::string err(std::error_code c) {
    return std::string(c.category().name()) + ":" + std::to_string(c.value()) + " (" + c.message() + ")";
}
inline std::string err(std::errc e) { return err(std::make_error_code(e)); }
inline std::string err(ipc::errc e) { return err(make_error_code(e)); }

// err() of the std::system_error that f() throws, or what happened instead.
template <class F>
std::string thrown(F&& f) {
    try {
        f();
    } catch (const std::system_error& e) {
        return err(e.code());
    } catch (const std::exception& e) {
        return std::string("other exception: ") + e.what();
    }
    return "no exception";
}

// --- Names -------------------------------------------------------------------

// "test.<pid>.<n>.<tag>": unique per process and call, so parallel ctest runs
// and reruns never collide.
inline std::string unique_name(std::string_view tag) {
    static std::atomic<unsigned> counter{0};
    return "test." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1)) + "." +
           std::string(tag);
}

// Owns a channel name: /dev/shm/ipc.NAME is unlinked (if present) at the end.
class ScopedName {
public:
    explicit ScopedName(std::string_view tag) : name_(unique_name(tag)) {}
    ~ScopedName() { ::shm_unlink(("ipc." + name_).c_str()); }
    ScopedName(const ScopedName&) = delete;
    ScopedName& operator=(const ScopedName&) = delete;

    const std::string& str() const noexcept { return name_; }
    operator std::string_view() const noexcept { return name_; }
    std::string path() const { return "/dev/shm/ipc." + name_; }
    bool exists() const {
        struct stat st {};
        return ::stat(path().c_str(), &st) == 0;
    }

private:
    std::string name_;
};

// --- Exit codes and reporting for code that runs outside GoogleTest ---------
//
// Children and peers exit with one of these; report() says why on stderr.

inline constexpr int exit_ok = 0;
inline constexpr int exit_usage = 2;
inline constexpr int exit_exception = 3;
inline constexpr int exit_timed_out = 10;  // a bounded call timed out: with a live peer, a lost wakeup
inline constexpr int exit_corrupted = 11;
inline constexpr int exit_order = 12;      // out of order or duplicated within one consumer
inline constexpr int exit_bad_message = 13;
inline constexpr int exit_unexpected = 14;

[[gnu::format(printf, 2, 3)]] inline int report(int code, const char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    std::fprintf(stderr, "[pid %d] %s\n", static_cast<int>(::getpid()), buf);
    return code;
}

inline int status_exit(Status s, const char* what) {
    return report(s == Status::timed_out   ? exit_timed_out
                  : s == Status::corrupted ? exit_corrupted
                                           : exit_unexpected,
                  "%s: %s", what, to_string(s));
}

// --- Delivery tally -------------------------------------------------------------

// One counter per (producer, seq) in a memfd, so consumers in any process can
// record what they received and the test can check "exactly once" at the end.
class Tally {
public:
    static Tally create(std::uint32_t producers, std::uint64_t per_producer) {
        const std::size_t n = std::size_t{producers} * per_producer;
        return Tally(Mapping::create_memfd("tally", std::max<std::size_t>(n, 1) * 4, false), producers,
                     per_producer);
    }
    static Tally attach(int fd, std::uint32_t producers, std::uint64_t per_producer) {
        return Tally(Mapping::map_fd(fd), producers, per_producer);
    }

    void record(std::uint32_t producer, std::uint64_t seq) noexcept {
        // Relaxed: read only after every writer has been joined or reaped.
        std::atomic_ref<std::uint32_t>(counter(producer, seq)).fetch_add(1, std::memory_order_relaxed);
    }
    std::uint32_t count(std::uint32_t producer, std::uint64_t seq) const noexcept {
        return std::atomic_ref<std::uint32_t>(counter(producer, seq)).load(std::memory_order_relaxed);
    }
    // "" if every message was delivered exactly once, else the first few that were not.
    std::string check() const {
        std::string bad;
        int shown = 0;
        for (std::uint32_t p = 0; p < producers_; ++p)
            for (std::uint64_t s = 0; s < per_; ++s)
                if (const auto c = count(p, s); c != 1 && shown++ < 8)
                    bad += "(" + std::to_string(p) + "," + std::to_string(s) + ")x" + std::to_string(c) + " ";
        return bad;
    }
    int fd() const noexcept { return map_->fd(); }
    std::uint32_t producers() const noexcept { return producers_; }
    std::uint64_t per_producer() const noexcept { return per_; }

private:
    Tally(std::shared_ptr<Mapping> m, std::uint32_t p, std::uint64_t per) : map_(std::move(m)), producers_(p), per_(per) {}
    std::uint32_t& counter(std::uint32_t p, std::uint64_t s) const noexcept {
        return static_cast<std::uint32_t*>(map_->data())[std::size_t{p} * per_ + s];
    }
    std::shared_ptr<Mapping> map_;
    std::uint32_t producers_;
    std::uint64_t per_;
};

// --- Workloads -----------------------------------------------------------------

struct ProducerPlan {
    std::uint32_t id = 0;
    std::uint64_t count = 0;
    std::size_t batch = 1;                         // > 1: try_send_batch, send_for when full
    std::chrono::milliseconds call_timeout = 10s;  // per blocking call: a lost wakeup fails, never hangs
};

// Sends make_msg(id, 0 .. count-1) in order. Returns an exit code.
inline int produce(Channel& ch, const ProducerPlan& p) {
    if (p.batch <= 1) {
        for (std::uint64_t s = 0; s < p.count; ++s)
            if (Status st = ch.send_for(make_msg(p.id, s), p.call_timeout); st != Status::ok)
                return status_exit(st, ("producer " + std::to_string(p.id) + " send_for").c_str());
        return exit_ok;
    }
    std::vector<Message> buf;
    for (std::uint64_t base = 0; base < p.count; base += p.batch) {
        buf.clear();
        for (std::uint64_t s = base; s < std::min(p.count, base + p.batch); ++s) buf.push_back(make_msg(p.id, s));
        std::span<const Message> rest(buf);
        while (!rest.empty()) {
            BatchResult r = ch.try_send_batch(rest);
            rest = rest.subspan(r.count);
            if (r.status == Status::ok) break;
            if (r.status != Status::would_block) return status_exit(r.status, "try_send_batch");
            if (Status st = ch.send_for(rest.front(), p.call_timeout); st != Status::ok)
                return status_exit(st, "send_for after a full batch");
            rest = rest.subspan(1);
        }
    }
    return exit_ok;
}

struct ConsumerPlan {
    std::uint32_t producers = 1;
    std::uint64_t per_producer = 0;
    std::size_t batch = 1;  // > 1: recv_batch_until
    std::chrono::milliseconds call_timeout = 10s;
};

// Receives until the channel is closed and drained. Every message must be well
// formed, and each producer's sequence numbers must strictly increase (a
// consumer sees one producer's messages in the order they were sent). Counts
// go into `tally`; `received` (if given) gets this consumer's total.
inline int consume(Channel& ch, const ConsumerPlan& c, Tally& tally, std::uint64_t* received = nullptr) {
    std::vector<std::uint64_t> next(c.producers, 0);
    std::vector<Message> buf(std::max<std::size_t>(c.batch, 1));
    std::uint64_t total = 0;
    for (;;) {
        std::size_t n = 0;
        Status st;
        if (c.batch <= 1) {
            st = ch.recv_for(buf[0], c.call_timeout);
            n = st == Status::ok ? 1 : 0;
        } else {
            BatchResult r = ch.recv_batch_until(buf, Clock::now() + c.call_timeout);
            st = r.status;
            n = r.count;
            if (st == Status::ok && (n == 0 || n > buf.size()))
                return report(exit_unexpected, "recv_batch_until: ok with count %zu", n);
        }
        if (st == Status::closed) break;
        if (st != Status::ok) return status_exit(st, "consumer recv");
        for (std::size_t i = 0; i < n; ++i) {
            const Message& m = buf[i];
            if (!well_formed(m)) return report(exit_bad_message, "malformed message (tag %#llx)",
                                               static_cast<unsigned long long>(m.tag));
            const std::uint32_t p = producer_of(m);
            const std::uint64_t s = seq_of(m);
            if (p >= c.producers || s >= c.per_producer)
                return report(exit_bad_message, "message (%u,%llu) out of range", p, static_cast<unsigned long long>(s));
            if (s < next[p])
                return report(exit_order, "producer %u: got seq %llu after %llu", p,
                              static_cast<unsigned long long>(s), static_cast<unsigned long long>(next[p] - 1));
            next[p] = s + 1;
            tally.record(p, s);
            ++total;
        }
    }
    if (received) *received = total;
    return exit_ok;
}

// --- Waiting without sleeping ---------------------------------------------------

// Re-evaluates `pred`, yielding the CPU between looks, until it holds or
// `timeout` passes. For observing a state another thread or process reaches
// (e.g. stats().sleeping_receivers), never as a stand-in for a handshake.
template <class Pred>
bool eventually(Pred&& pred, std::chrono::milliseconds timeout = 10s) {
    const auto end = Clock::now() + timeout;
    while (!pred()) {
        if (Clock::now() >= end) return false;
        ::sched_yield();
    }
    return true;
}

// --- Processes --------------------------------------------------------------------

// "exit 0", "exit 10", "signal 9": for readable assertions on a wait status.
inline std::string describe(int status) {
    if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
}

// A child process. The destructor kills (SIGKILL) and reaps one still running,
// so a failing test never leaves stragglers.
class Process {
public:
    // Runs `body` in a forked child, which then _exits with its result (an
    // exception becomes exit_exception). The child never returns into the
    // test framework.
    static Process fork(const std::function<int()>& body) {
        std::fflush(nullptr);
        const pid_t pid = ::fork();
        if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
        if (pid == 0) {
            int code = exit_exception;
            try {
                code = body();
            } catch (const std::exception& e) {
                report(exit_exception, "child threw: %s", e.what());
            } catch (...) {
                report(exit_exception, "child threw a non-exception");
            }
            std::fflush(nullptr);
            ::_exit(code);
        }
        return Process(pid);
    }

    // posix_spawn()s `argv[0]` with `argv`; each (from, to) in `fds` is
    // dup2()ed into the child as descriptor `to` (which clears O_CLOEXEC).
    static Process spawn(const std::vector<std::string>& argv, const std::vector<std::pair<int, int>>& fds = {}) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        for (auto [from, to] : fds) posix_spawn_file_actions_adddup2(&fa, from, to);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        pid_t pid = -1;
        std::fflush(nullptr);
        const int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) throw std::system_error(rc, std::generic_category(), "posix_spawn " + argv[0]);
        return Process(pid);
    }

    Process(Process&& o) noexcept : pid_(std::exchange(o.pid_, -1)), usage_(o.usage_) {}
    Process& operator=(Process&& o) noexcept {
        if (this != &o) {
            reap_now();
            pid_ = std::exchange(o.pid_, -1);
            usage_ = o.usage_;
        }
        return *this;
    }
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    ~Process() { reap_now(); }

    pid_t pid() const noexcept { return pid_; }

    // Waits for the child to exit, at most `timeout`; returns its wait status.
    // On timeout the child is killed and nullopt returned.
    std::optional<int> wait(std::chrono::milliseconds timeout = 30s) {
        if (pid_ < 0) return std::nullopt;
        const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
        if (pidfd >= 0) {
            pollfd p{pidfd, POLLIN, 0};
            const auto end = Clock::now() + timeout;
            int r;
            do {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
                r = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
            } while (r < 0 && errno == EINTR);
            ::close(pidfd);
            if (r == 0) {
                report(exit_timed_out, "child %d still running after %lld ms: killing it", static_cast<int>(pid_),
                       static_cast<long long>(timeout.count()));
                reap_now();
                return std::nullopt;
            }
        }
        int status = 0;
        while (::wait4(pid_, &status, 0, &usage_) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        return status;
    }

    // Resource usage of the child once wait() has reaped it (e.g. ru_nvcsw:
    // how often it gave up the CPU, mostly by sleeping on a futex).
    const rusage& usage() const noexcept { return usage_; }

    // "exit 0" when the child exited cleanly in time, else what happened.
    std::string wait_describe(std::chrono::milliseconds timeout = 30s) {
        auto st = wait(timeout);
        return st ? describe(*st) : "timed out";
    }

    void kill9() noexcept {
        if (pid_ > 0) ::kill(pid_, SIGKILL);
    }

private:
    explicit Process(pid_t pid) noexcept : pid_(pid) {}
    void reap_now() noexcept {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        int st;
        while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }
    pid_t pid_ = -1;
    rusage usage_{};
};

// --- Pipes and descriptor passing ----------------------------------------------------

class Pipe {
public:
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
        r_ = fds[0];
        w_ = fds[1];
    }
    ~Pipe() {
        close_read();
        close_write();
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
    int read_fd() const noexcept { return r_; }
    int write_fd() const noexcept { return w_; }
    void close_read() noexcept { if (r_ >= 0) ::close(std::exchange(r_, -1)); }
    void close_write() noexcept { if (w_ >= 0) ::close(std::exchange(w_, -1)); }
    bool put(char c) noexcept {
        ssize_t n;
        do n = ::write(w_, &c, 1); while (n < 0 && errno == EINTR);
        return n == 1;
    }
    // The next byte, or nullopt on EOF, error or after `timeout`.
    std::optional<char> get(std::chrono::milliseconds timeout = 10s) noexcept {
        pollfd p{r_, POLLIN, 0};
        int r;
        do r = ::poll(&p, 1, static_cast<int>(timeout.count())); while (r < 0 && errno == EINTR);
        if (r <= 0) return std::nullopt;
        char c;
        ssize_t n;
        do n = ::read(r_, &c, 1); while (n < 0 && errno == EINTR);
        if (n != 1) return std::nullopt;
        return c;
    }

private:
    int r_ = -1, w_ = -1;
};

inline bool send_fd(int sock, int fd) {
    char byte = 'F';
    iovec iov{&byte, 1};
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof ctrl;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return ::sendmsg(sock, &msg, MSG_NOSIGNAL) == 1;
}

// The descriptor received (O_CLOEXEC), or -1.
inline int recv_fd(int sock) {
    char byte;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof ctrl;
    if (::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1) return -1;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

// --- Raw segments ------------------------------------------------------------------

// The bytes of a freshly created, valid channel: patch them with poke() and
// write them somewhere to test validation.
inline std::vector<std::byte> channel_image(const ChannelOptions& o) {
    Channel ch = Channel::create_anonymous(o);
    const auto* p = static_cast<const std::byte*>(ch.mapping()->data());
    return {p, p + ch.mapping()->size()};
}

template <class T>
void poke(std::vector<std::byte>& img, std::size_t offset, T value) {
    std::memcpy(img.data() + offset, &value, sizeof value);
}

// A memfd (O_CLOEXEC) holding `bytes`; the caller closes it.
inline int memfd_with(std::span<const std::byte> bytes) {
    const int fd = ::memfd_create("crafted", MFD_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "memfd_create");
    if (!bytes.empty() && ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()))
        throw std::system_error(errno, std::generic_category(), "write memfd");
    return fd;
}

// Writes `bytes` as the segment /dev/shm/ipc.NAME (which must not exist).
inline void write_segment(const std::string& name, std::span<const std::byte> bytes, mode_t mode = 0600) {
    const std::string path = "/dev/shm/ipc." + name;
    const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "create " + path);
    const bool ok = bytes.empty() || ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
    ::close(fd);
    if (!ok) throw std::system_error(EIO, std::generic_category(), "write " + path);
}

// Write access to the segment a handle uses, as a misbehaving peer has it.
inline shm::ChannelControl& scribble(const Channel& ch) noexcept {
    return *const_cast<shm::ChannelControl*>(ch.control());
}
inline shm::MpmcSlot* mpmc_slots(const Channel& ch) noexcept {
    return reinterpret_cast<shm::MpmcSlot*>(reinterpret_cast<std::byte*>(&scribble(ch)) + shm::slots_offset);
}

}  // namespace ipc::test
