// daemon/server.cpp - the ipcd event loop (see server.hpp).
//
// Life of a session:
//
//   accept -> SO_PEERCRED -> table.add_session (per-user limit) -> memfd with
//   header + request ring + reply ring, sealed -> Hello + SCM_RIGHTS ->
//   arm hang-up poll, queue for serving
//   serve: try_recv up to the budget; each request -> table.handle -> replies
//          delivered with try_send (a full reply ring drops the session)
//   idle:  prepare_recv_wait(); not ready -> arm FUTEX_WAIT on the doorbell;
//          its completion -> finish_recv_wait(), queue for serving
//   end:   hang-up (or a violation) -> doomed -> dropped at a safe point:
//          pending SQEs submitted, its waits cancelled, table.remove_session
//          (permits given back, waiters granted), socket closed, memfd unmapped
//
// Completions carry (kind, session id) in user_data, never pointers, so a
// completion that arrives after its session was dropped finds nothing and is
// ignored. Sessions are dropped only between handlers (doomed_), so no
// handler ever sees its session vanish under it.
#include "server.hpp"

#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ipc/channel.hpp"
#include "ipc/mapping.hpp"
#include "ipc/protocol.hpp"
#include "config.hpp"
#include "ipc/semaphore.hpp"
#include "log.hpp"
#include "state.hpp"
#include "sys.hpp"
#include "uring_futex.hpp"

namespace ipcd {
namespace {

using ipc::Channel;
using ipc::Mapping;
using ipc::Status;
using ipc::detail::UniqueFd;
namespace proto = ipc::proto;

constexpr unsigned request_budget = 16;  // requests per session per turn
constexpr unsigned sq_entries = 256;
constexpr unsigned cq_entries = 4096;

// --- user_data: kind in the top byte, session id in the low 32 bits --------

enum class Kind : std::uint8_t { accept = 1, signal, hangup, doorbell, cancel, accept_retry };

std::uint64_t tag(Kind k, SessionId id = 0) { return (std::uint64_t{static_cast<std::uint8_t>(k)} << 56) | id; }
Kind kind_of(std::uint64_t ud) { return static_cast<Kind>(ud >> 56); }
SessionId id_of(std::uint64_t ud) { return static_cast<SessionId>(ud); }

const char* errstr(int err) { return std::strerror(err); }

// CLOCK_MONOTONIC alone, in ns: for timers and the spin loop, which have no
// use for the wall clock.
std::int64_t mono_ns() {
    timespec m{};
    ::clock_gettime(CLOCK_MONOTONIC, &m);
    return m.tv_sec * 1'000'000'000LL + m.tv_nsec;
}

Now clock_now() {
    timespec r{};
    const std::int64_t m = mono_ns();
    ::clock_gettime(CLOCK_REALTIME, &r);
    return Now{m, r.tv_sec * 1'000'000'000LL + r.tv_nsec};
}

// --- the session segment ---------------------------------------------------

ipc::ChannelOptions ring_options() {
    ipc::ChannelOptions o;
    o.kind = ipc::ChannelKind::spsc;
    o.capacity = proto::ring_capacity;
    return o;
}

struct Geometry {
    std::size_t request_offset, reply_offset, size;
};

Geometry session_geometry() {
    const std::size_t ring = Channel::bytes_needed(ring_options());
    const std::size_t req = sizeof(proto::SessionHeader);
    return Geometry{req, req + ring, req + 2 * ring};
}

std::vector<gid_t> peer_groups(int fd) {
    std::vector<gid_t> g(32);
    for (int attempt = 0; attempt < 4; ++attempt) {
        auto len = static_cast<socklen_t>(g.size() * sizeof(gid_t));
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g.data(), &len) == 0) {
            g.resize(len / sizeof(gid_t));
            return g;
        }
        if (errno != ERANGE) return {};
        g.resize(len / sizeof(gid_t) + 8);
    }
    return {};
}

// The peer's command name, for `ipcctl sessions`; "" if it already exited
// or /proc hides it. Read once at connect: a pid may be reused later.
std::string command_name(pid_t pid) {
    char path[48];
    std::snprintf(path, sizeof path, "/proc/%d/comm", static_cast<int>(pid));
    UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (!fd) return {};
    char buf[proto::comm_max + 1] = {};
    const ssize_t n = ipc::detail::retry_eintr([&] { return ::read(fd.get(), buf, proto::comm_max); });
    if (n <= 0) return {};
    std::string s(buf, static_cast<std::size_t>(n));
    while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.pop_back();
    return s;
}

// Sends the Hello, with `memfd` attached unless it is -1 (a refusal).
bool send_hello(int sock, const proto::Hello& hello, int memfd) {
    iovec iov{const_cast<proto::Hello*>(&hello), sizeof hello};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (memfd >= 0) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &memfd, sizeof(int));
    }
    // The socket is fresh: its send buffer is empty, so this never blocks.
    const ssize_t n = ipc::detail::retry_eintr([&] { return ::sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT); });
    return n == static_cast<ssize_t>(sizeof hello);
}

const char* signal_name(std::uint32_t sig) {
    switch (sig) {
        case SIGTERM: return "SIGTERM";
        case SIGINT: return "SIGINT";
        case SIGHUP: return "SIGHUP";
        default: return "a signal";
    }
}

// ---------------------------------------------------------------------------

struct Session {
    SessionId id = 0;
    Peer peer;
    UniqueFd sock;
    std::shared_ptr<Mapping> mapping;
    Channel requests;  // client -> daemon
    Channel replies;   // daemon -> client
    bool doorbell_armed = false;  // a FUTEX_WAIT is in flight (finish_recv_wait owed)
    bool hangup_armed = false;
    bool queued = false;          // in ready_
    bool idle = false;            // in idle_: polled by spin_idle(), doorbell not armed
    bool doomed = false;          // in doomed_: no more serving, dropped soon
    bool released = false;        // ended by Op::release_session: the table already forgot it
    int drop_priority = log::info;
    std::string drop_reason;
};

class Server {
public:
    explicit Server(const Options& o) : opt_(o), spin_us_(o.spin_us.value_or(default_spin_us)) {}
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    int run();

private:
    // start-up
    bool setup_ring();
    bool setup_signals();
    bool setup_listener();
    bool bind_listener();
    bool load_saved_state();
    bool setup_state_dir();
    // configuration: read at start (failure is fatal) and on SIGHUP or
    // Op::reload (failure keeps the running configuration)
    bool read_config(Config& out, bool at_start);
    void apply_config(Config cfg, bool at_start);
    Result reload(const char* why);
    void raise_fd_limit();

    // the loop
    bool wait_for_events();
    void process_completions();
    void dispatch(std::uint64_t user_data, int res, unsigned flags);
    int shutdown();

    // submissions
    io_uring_sqe* sqe();
    void arm_accept();
    void arm_accept_retry();
    void arm_signal_read();
    void arm_hangup(Session& s);
    void arm_doorbell(Session& s);
    void arm_idle_doorbells();
    void sleep_on(Session& s, std::uint32_t seq);
    void cancel(std::uint64_t user_data);

    // completions
    void on_accept(int res, unsigned flags);
    void on_signal(int res);
    void on_hangup(SessionId id, int res);
    void on_doorbell(SessionId id, int res);

    // sessions
    void new_session(UniqueFd sock);
    SessionId allocate_id();
    Session* find(SessionId id);
    void enqueue(Session& s);
    void serve_ready();
    void go_idle(Session& s);
    void spin_idle();
    void serve(Session& s);
    void handle_request(Session& s, const ipc::Message& m, const Now& now);
    void deliver();
    void doom(Session& s, int priority, std::string reason);
    void drop_doomed();
    void drop(SessionId id);
    void save_if_dirty();
    void close_listener();
    // systemd: STATUS= on change (at most once a second), WATCHDOG=1
    void setup_notify();
    void notify_housekeeping();
    std::optional<std::int64_t> notify_deadline() const;
    int format_status(char* buf, std::size_t size) const;

    Options opt_;
    SemaphoreTable table_;
    Config config_;           // the running configuration (file + command line)
    unsigned spin_us_;        // effective --spin
    bool socket_from_cli_ = false;  // --socket given: the file's `socket` never applies
    std::string state_dir_;   // effective --state-dir
    std::string state_file_;  // state_dir_/semaphores.json
    io_uring ring_{};
    bool ring_ok_ = false;
    UniqueFd listen_fd_;
    UniqueFd lock_fd_;
    UniqueFd signal_fd_;
    std::string socket_path_;
    bool own_socket_file_ = false;
    bool accept_armed_ = false;
    bool accept_error_logged_ = false;
    bool stop_requested_ = false;
    bool stopping_ = false;
    bool state_error_logged_ = false;
    std::int64_t save_retry_ns_ = 0;  // CLOCK_MONOTONIC; after a failed save
    signalfd_siginfo siginfo_{};
    __kernel_timespec accept_retry_ts_{0, 100'000'000};
    Geometry geometry_ = session_geometry();

    std::unordered_map<SessionId, std::unique_ptr<Session>> sessions_;
    std::deque<SessionId> ready_;
    std::vector<SessionId> idle_;      // served recently, polled before their doorbells are armed
    std::vector<Session*> arming_;     // arm_idle_doorbells() scratch (no allocation per pass)
    std::int64_t spin_budget_ns_ = 5'000;  // adaptive, <= spin_us_
    std::deque<SessionId> doomed_;
    std::unordered_set<uid_t> refusal_logged_;
    Outbox outbox_;
    SessionId next_id_ = 1;

    // sd_notify state (all CLOCK_MONOTONIC ns). Nothing happens without
    // $NOTIFY_SOCKET; nothing ticks unless a status is owed or the
    // watchdog is on.
    struct Counts {
        std::size_t sessions = 0, semaphores = 0, waiters = 0;
        bool operator==(const Counts&) const = default;
    };
    Counts counts() const {
        return Counts{table_.session_count(), table_.semaphore_count(), table_.waiting_count()};
    }
    bool notify_ = false;
    Counts status_sent_{};
    std::int64_t status_sent_ns_ = 0;
    std::optional<std::int64_t> status_due_ns_;  // a change is waiting for the rate limit
    std::int64_t watchdog_interval_ns_ = 0;      // 0: no watchdog; else half of $WATCHDOG_USEC
    std::int64_t watchdog_due_ns_ = 0;
};

Server::~Server() {
    sessions_.clear();
    if (ring_ok_) io_uring_queue_exit(&ring_);
    if (own_socket_file_) ::unlink(socket_path_.c_str());
}

// ---------------------------------------------------------------------------
// Start-up

void Server::raise_fd_limit() {
    // Two descriptors per session (socket, memfd). We never use select(), so
    // the soft limit can go up to the hard one, as systemd recommends.
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log::line(log::warning, "cannot raise the descriptor limit: %s", errstr(errno));
    }
}

bool Server::setup_ring() {
    io_uring_params p{};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = cq_entries;
    if (int r = io_uring_queue_init_params(sq_entries, &ring_, &p); r < 0) {
        log::line(log::err, "cannot create an io_uring: %s%s", errstr(-r),
                  r == -EPERM || r == -ENOSYS ? " (io_uring is disabled: see sysctl kernel.io_uring_disabled)" : "");
        return false;
    }
    ring_ok_ = true;
    if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_NODROP)) {
        log::line(log::err, "this kernel's io_uring is too old (needs IORING_FEAT_EXT_ARG and NODROP, Linux 5.11+)");
        return false;
    }
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    const bool futex = probe && io_uring_opcode_supported(probe, uring_op_futex_wait);
    if (probe) io_uring_free_probe(probe);
    if (!futex) {
        log::line(log::err,
                  "this kernel does not support io_uring futex waits (IORING_OP_FUTEX_WAIT, Linux 6.7+), "
                  "which ipcd needs to sleep on its clients' rings");
        return false;
    }
    return true;
}

bool Server::setup_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) {
        log::line(log::err, "cannot block signals: %s", errstr(errno));
        return false;
    }
    ::signal(SIGPIPE, SIG_IGN);
    signal_fd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signal_fd_) {
        log::line(log::err, "cannot create a signalfd: %s", errstr(errno));
        return false;
    }
    return true;
}

bool Server::setup_listener() {
    const int n = sd_listen_fds(1);
    if (n < 0) {
        log::line(log::err, "cannot read the sockets passed by systemd: %s", errstr(-n));
        return false;
    }
    if (n == 0) return bind_listener();
    if (n > 1) {
        log::line(log::err, "systemd passed %d sockets; ipcd listens on exactly one", n);
        return false;
    }
    const int fd = SD_LISTEN_FDS_START;
    if (sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) <= 0) {
        log::line(log::err, "the socket passed by systemd is not a listening Unix stream socket");
        return false;
    }
    (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
    listen_fd_.reset(fd);
    sockaddr_un addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 && addr.sun_path[0] != '\0')
        socket_path_ = addr.sun_path;
    else
        socket_path_ = "(socket from systemd)";
    return true;
}

bool Server::bind_listener() {
    bool defaulted = opt_.socket_path.empty();
    socket_path_ = defaulted ? ipc::Session::default_socket_path() : opt_.socket_path;
    if (const char* env = std::getenv("IPCD_SOCKET"); defaulted && env && *env) defaulted = false;
    const std::string& path = socket_path_;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path) {
        log::line(log::err, "socket path '%s' is empty or longer than %zu bytes", path.c_str(),
                  sizeof addr.sun_path - 1);
        return false;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

    // The default system directory is ours to create (like RuntimeDirectory=).
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    if (defaulted && ::geteuid() == 0 && ::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        log::line(log::err, "cannot create %s: %s", dir.c_str(), errstr(errno));
        return false;
    }

    // One ipcd per socket path: the lock serialises starts, so two daemons
    // cannot both decide the socket is stale and steal it from each other.
    const std::string lock_path = path + ".lock";
    lock_fd_.reset(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!lock_fd_) {
        log::line(log::err, "cannot open lock file %s: %s%s", lock_path.c_str(), errstr(errno),
                  errno == ENOENT ? " (does the directory exist? use --socket or set $XDG_RUNTIME_DIR)" : "");
        return false;
    }
    if (::flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
        char buf[32] = {};
        const ssize_t r = ::pread(lock_fd_.get(), buf, sizeof buf - 1, 0);
        const long pid = r > 0 ? std::strtol(buf, nullptr, 10) : 0;
        if (errno == EWOULDBLOCK || errno == EAGAIN || r >= 0)
            log::line(log::err, "another ipcd (pid %ld) is already serving %s", pid, path.c_str());
        else
            log::line(log::err, "cannot lock %s: %s", lock_path.c_str(), errstr(errno));
        return false;
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(lock_fd_.get(), 0) != 0 || ::pwrite(lock_fd_.get(), pid.data(), pid.size(), 0) < 0)
        log::line(log::warning, "cannot write our pid to %s: %s", lock_path.c_str(), errstr(errno));

    // A socket file left by a daemon that died is removed; a live one is not.
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            log::line(log::err, "%s exists and is not a socket; remove it or choose another --socket", path.c_str());
            return false;
        }
        // We hold the lock, so no ipcd is running here. A listener can still
        // linger for a moment after its ipcd was killed (the kernel tears an
        // io_uring down asynchronously, and its pending accept keeps the
        // socket open), so only a listener that stays is taken for live.
        int err = 0;
        for (int attempt = 0; attempt < 50; ++attempt) {  // up to 1 s
            UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
            const int r = probe ? ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) : -1;
            err = r == 0 ? 0 : errno;
            if (r != 0 && err != EAGAIN && err != EINPROGRESS) break;
            ::usleep(20'000);
        }
        if (err == 0 || err == EAGAIN || err == EINPROGRESS) {
            log::line(log::err, "another ipcd is already listening on %s", path.c_str());
            return false;
        }
        errno = err;
        if (errno != ECONNREFUSED && errno != ENOENT) {
            log::line(log::err, "cannot check whether %s is in use: %s", path.c_str(), errstr(errno));
            return false;
        }
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
            log::line(log::err, "cannot remove stale socket %s: %s", path.c_str(), errstr(errno));
            return false;
        }
        log::line(log::notice, "removed stale socket %s (nothing was listening on it)", path.c_str());
    }

    listen_fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listen_fd_) {
        log::line(log::err, "cannot create a Unix socket: %s", errstr(errno));
        return false;
    }
    if (::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        log::line(log::err, "cannot bind %s: %s", path.c_str(), errstr(errno));
        return false;
    }
    own_socket_file_ = true;
    // Anyone may connect: access is decided per semaphore, from the peer's
    // credentials, not by the socket's mode.
    if (::chmod(path.c_str(), 0666) != 0) {
        log::line(log::err, "cannot chmod %s: %s", path.c_str(), errstr(errno));
        return false;
    }
    if (::listen(listen_fd_.get(), SOMAXCONN) != 0) {
        log::line(log::err, "cannot listen on %s: %s", path.c_str(), errstr(errno));
        return false;
    }
    return true;
}

// --- configuration ---------------------------------------------------------

// Reads the configuration file into `out`. The default file may be missing
// (built-in defaults); a file named with --config may not.
bool Server::read_config(Config& out, bool at_start) {
    const bool given = !opt_.config_path.empty();
    const std::string path = given ? opt_.config_path : default_config_path;
    if (!given && ::access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
        if (at_start) log::line(log::debug, "no %s: using built-in defaults", path.c_str());
        out = Config{};
        return true;
    }
    try {
        out = load_config(path);
        return true;
    } catch (const std::exception& e) {  // ConfigError, or bad_alloc
        if (at_start)
            log::line(log::err, "%s; fix the file (or name another with --config) and start ipcd again", e.what());
        else
            log::line(log::err, "reload refused: %s; the running configuration stays in effect", e.what());
        return false;
    }
}

// Puts a configuration into effect: limits and the create policy for the
// next requests, declared semaphores created or changed (their waiters may
// be granted now), the spin bound. The command line wins over the file.
// The socket and the state directory are read once, at start.
void Server::apply_config(Config cfg, bool at_start) {
    if (!at_start) {
        if (cfg.socket_path != config_.socket_path && !socket_from_cli_)
            log::line(log::notice, "reload: 'socket' changed to '%s'; ipcd keeps %s until it is restarted",
                      cfg.socket_path.c_str(), socket_path_.c_str());
        if (cfg.state_dir != config_.state_dir && opt_.state_dir.empty())
            log::line(log::notice, "reload: 'state_dir' changed to '%s'; ipcd keeps %s until it is restarted",
                      cfg.state_dir.c_str(), state_dir_.c_str());
    }
    Limits limits = cfg.limits;
    if (opt_.sessions_per_user) limits.sessions_per_user = *opt_.sessions_per_user;
    if (opt_.semaphores_per_user) limits.semaphores_per_user = *opt_.semaphores_per_user;
    if (opt_.waits_per_user) limits.waits_per_user = *opt_.waits_per_user;
    table_.set_limits(limits, cfg.user_limits);
    table_.set_create_policy(cfg.create);
    spin_us_ = opt_.spin_us.value_or(cfg.spin_us.value_or(default_spin_us));

    const auto report = table_.declare(cfg.semaphores, clock_now(), outbox_);
    const auto names = [](const std::vector<std::string>& v) {
        std::string out;
        for (const auto& n : v) out += (out.empty() ? "" : ", ") + n;
        return out;
    };
    if (!report.created.empty())
        log::line(log::info, "declared semaphores created: %s", names(report.created).c_str());
    if (!report.changed.empty())
        log::line(log::info, "declared semaphores changed: %s", names(report.changed).c_str());
    if (!report.adopted.empty())
        log::line(log::notice, "existing semaphores now declared by the configuration: %s",
                  names(report.adopted).c_str());
    if (!report.undeclared.empty())
        log::line(log::notice,
                  "no longer declared (kept as ordinary persistent semaphores; 'ipcctl delete' removes them): %s",
                  names(report.undeclared).c_str());
    if (!report.refused.empty())
        log::line(log::err, "declared semaphores that could not be applied: %s", names(report.refused).c_str());
    config_ = std::move(cfg);
    deliver();  // raised permits may have granted waiters
}

Result Server::reload(const char* why) {
    log::line(log::info, "reloading the configuration (%s)", why);
    if (notify_) sd_notify(0, "RELOADING=1\nSTATUS=Reloading the configuration");
    Config cfg;
    const bool ok = read_config(cfg, false);
    if (ok) apply_config(std::move(cfg), false);
    if (notify_) {
        char status[512];
        format_status(status, sizeof status);
        sd_notifyf(0, "READY=1\nSTATUS=%s", status);
    }
    if (!ok) return Result::bad_config;
    log::line(log::info, "configuration reloaded: %zu declared semaphore%s", config_.semaphores.size(),
              config_.semaphores.size() == 1 ? "" : "s");
    return Result::ok;
}

// --- persistence -------------------------------------------------------------

namespace {
std::string default_state_dir() {
    if (const char* sd = std::getenv("STATE_DIRECTORY"); sd && *sd) {  // systemd: colon-separated list
        std::string dir(sd);
        return dir.substr(0, dir.find(':'));
    }
    if (::geteuid() == 0) return "/var/lib/ipcd";
    if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x == '/') return std::string(x) + "/ipcd";
    if (const char* h = std::getenv("HOME"); h && *h == '/') return std::string(h) + "/.local/state/ipcd";
    return {};
}
}  // namespace

bool Server::setup_state_dir() {
    state_dir_ = !opt_.state_dir.empty() ? opt_.state_dir : !config_.state_dir.empty() ? config_.state_dir
                                                                                        : default_state_dir();
    if (state_dir_.empty()) {
        log::line(log::err, "no state directory: $HOME is not set; name one with --state-dir");
        return false;
    }
    std::error_code ec;
    std::filesystem::create_directories(state_dir_, ec);
    if (ec) {
        log::line(log::err, "cannot create state directory %s: %s; create it or name another with --state-dir",
                  state_dir_.c_str(), ec.message().c_str());
        return false;
    }
    if (::access(state_dir_.c_str(), W_OK | X_OK) != 0) {
        log::line(log::err, "cannot write to state directory %s: %s; fix its permissions or name another with "
                  "--state-dir", state_dir_.c_str(), errstr(errno));
        return false;
    }
    state_file_ = state_dir_ + "/semaphores.json";
    return true;
}

bool Server::load_saved_state() {
    std::vector<Definition> defs;
    try {
        defs = load_state(state_file_);
    } catch (const StateCorrupt& e) {
        // Never dropped silently, never fatal: the file is kept for a human
        // to look at, and ipcd starts without its semaphores.
        try {
            const std::string aside = move_aside(state_file_);
            // Its token reservations are gone with it: start every token
            // above anything a semaphore of this machine can have granted
            // (microseconds of the wall clock, which no grant rate outruns).
            const std::uint64_t floor = static_cast<std::uint64_t>(clock_now().real_ns / 1000);
            table_.set_token_floor(floor);
            log::line(log::err,
                      "%s; moved it aside to %s and starting without its semaphores (fencing tokens now start "
                      "above %" PRIu64 ")",
                      e.what(), aside.c_str(), floor);
        } catch (const std::exception& m) {
            log::line(log::err, "%s, and it cannot be moved aside (%s); move or remove it by hand", e.what(),
                      m.what());
            return false;
        }
        return true;
    } catch (const std::exception& e) {
        log::line(log::err, "%s", e.what());
        return false;
    }
    std::size_t n = 0;
    for (const Definition& d : defs) {
        if (Result r = table_.restore(d); r != Result::ok) {
            log::line(log::err, "state file %s: cannot restore semaphore '%s': %s; skipping it",
                      state_file_.c_str(), d.name.c_str(), proto::describe(r));
            continue;
        }
        ++n;
    }
    if (n) log::line(log::info, "restored %zu persistent semaphore%s from %s", n, n == 1 ? "" : "s",
                     state_file_.c_str());
    return true;
}

int Server::run() {
    Config cfg;
    if (!read_config(cfg, true)) return 1;
    config_ = cfg;  // socket and state_dir are read from it at start only
    socket_from_cli_ = !opt_.socket_path.empty();
    if (!socket_from_cli_) opt_.socket_path = cfg.socket_path;
    if (!setup_signals() || !setup_ring()) return 1;
    raise_fd_limit();
    if (!setup_state_dir() || !load_saved_state()) return 1;
    apply_config(std::move(cfg), true);  // declared semaphores after the saved ones: they keep their tokens
    if (!setup_listener()) return 1;
    table_.set_daemon_info(::getpid(), clock_now().real_ns / 1'000'000'000LL);
    arm_signal_read();
    arm_accept();
    if (int r = io_uring_submit(&ring_); r < 0) {
        log::line(log::err, "cannot submit to the io_uring: %s", errstr(-r));
        return 1;
    }
    log::line(log::info, "listening on %s (version %s, protocol %u, pid %d)", socket_path_.c_str(), IPCD_VERSION,
              proto::version, static_cast<int>(::getpid()));
    setup_notify();
    if (notify_) {
        char status[512];
        format_status(status, sizeof status);
        sd_notifyf(0, "READY=1\nSTATUS=%s\nMAINPID=%lu", status, static_cast<unsigned long>(::getpid()));
        if (watchdog_interval_ns_) sd_notify(0, "WATCHDOG=1");
    }

    while (!stop_requested_) {
        serve_ready();
        drop_doomed();
        save_if_dirty();
        spin_idle();
        if (notify_) notify_housekeeping();
        if (!wait_for_events()) return 1;
        process_completions();
        table_.expire(clock_now(), outbox_);
        deliver();
        drop_doomed();
    }
    return shutdown();
}

// ---------------------------------------------------------------------------
// The loop

bool Server::wait_for_events() {
    // Sleep only when no work is queued; wake at the earliest acquire
    // deadline, a STATUS= owed to systemd or the watchdog ping, if there is
    // one (no timer at all otherwise).
    bool sleep = ready_.empty() && doomed_.empty() && idle_.empty();
    __kernel_timespec ts{};
    __kernel_timespec* tsp = nullptr;
    std::optional<std::int64_t> deadline = table_.next_deadline();
    if (notify_) {
        // A status owed to systemd, or the next watchdog ping, also ends the sleep.
        if (auto n = notify_deadline(); n && (!deadline || *n < *deadline)) deadline = n;
    }
    if (sleep && deadline) {
        const std::int64_t left = *deadline - mono_ns();
        if (left <= 0) {
            sleep = false;
        } else {
            ts.tv_sec = left / 1'000'000'000;
            ts.tv_nsec = left % 1'000'000'000;
            tsp = &ts;
        }
    }
    int r;
    if (sleep) {
        io_uring_cqe* cqe = nullptr;
        r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, tsp, nullptr);
    } else {
        r = io_uring_submit(&ring_);
    }
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
        log::line(log::err, "waiting on the io_uring failed: %s; exiting", errstr(-r));
        return false;
    }
    return true;
}

void Server::process_completions() {
    // Handlers may queue SQEs (and submit when the SQ is full); they never
    // wait, so iterating the CQ while they run is safe. Bounded, so that a
    // stream of completions (a connection storm) cannot keep the loop from
    // serving the sessions it already has.
    for (unsigned n = 0; n < cq_entries; ++n) {
        io_uring_cqe* cqe = nullptr;
        if (io_uring_peek_cqe(&ring_, &cqe) != 0 || !cqe) break;
        const std::uint64_t ud = cqe->user_data;
        const int res = cqe->res;
        const unsigned flags = cqe->flags;
        io_uring_cqe_seen(&ring_, cqe);
        dispatch(ud, res, flags);
    }
}

void Server::dispatch(std::uint64_t ud, int res, unsigned flags) {
    switch (kind_of(ud)) {
        case Kind::accept: on_accept(res, flags); break;
        case Kind::accept_retry:
            if (!stopping_ && !accept_armed_) arm_accept();
            break;
        case Kind::signal: on_signal(res); break;
        case Kind::hangup: on_hangup(id_of(ud), res); break;
        case Kind::doorbell: on_doorbell(id_of(ud), res); break;
        case Kind::cancel: break;  // the cancelled request reports on its own
    }
}

int Server::shutdown() {
    stopping_ = true;
    sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
    log::line(log::notice, "stopping: %zu sessions, %zu waiting requests answered 'stopping'", sessions_.size(),
              table_.waiting_count());
    close_listener();
    table_.stop(outbox_);
    deliver();
    // Requests already in the rings get answers too (a wait among them is
    // answered 'stopping'). Bounded: a client cannot keep us here.
    const Now now = clock_now();
    for (auto& [id, s] : sessions_) {
        for (unsigned i = 0; i < 2 * proto::ring_capacity && !s->doomed; ++i) {
            ipc::Message m;
            if (s->requests.try_recv(m) != Status::ok) break;
            handle_request(*s, m, now);
        }
    }
    drop_doomed();
    save_if_dirty();
    log::line(log::info, "stopped");
    return 0;
}

// ---------------------------------------------------------------------------
// systemd notifications

void Server::setup_notify() {
    const char* ns = std::getenv("NOTIFY_SOCKET");
    notify_ = ns && *ns;
    if (!notify_) return;
    status_sent_ = counts();
    status_sent_ns_ = mono_ns();
    std::uint64_t usec = 0;
    // > 0 only if $WATCHDOG_USEC is set and $WATCHDOG_PID, if set, is ours.
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        watchdog_interval_ns_ = std::max<std::int64_t>(static_cast<std::int64_t>(usec) * 1000 / 2, 1'000'000);
        watchdog_due_ns_ = status_sent_ns_ + watchdog_interval_ns_;
        log::line(log::info, "systemd watchdog: pinging every %" PRId64 " ms", watchdog_interval_ns_ / 1'000'000);
    }
}

int Server::format_status(char* buf, std::size_t size) const {
    const Counts c = counts();
    return std::snprintf(buf, size, "Listening on %s: %zu session%s, %zu semaphore%s, %zu waiter%s",
                         socket_path_.c_str(), c.sessions, c.sessions == 1 ? "" : "s", c.semaphores,
                         c.semaphores == 1 ? "" : "s", c.waiters, c.waiters == 1 ? "" : "s");
}

// Called once per loop turn, before sleeping. Reports a change of the
// counts at once if the last report is a second old, else owes it (and
// wait_for_events() wakes for it); pings the watchdog when due. Costs a
// clock read per turn only while something is owed or the watchdog is on.
void Server::notify_housekeeping() {
    const bool changed = !(counts() == status_sent_);
    if (!changed) status_due_ns_.reset();  // changed and back again: nothing to say
    if (!changed && !watchdog_interval_ns_) return;
    const std::int64_t now = mono_ns();
    if (changed) {
        if (now - status_sent_ns_ >= 1'000'000'000) {
            char status[512];
            format_status(status, sizeof status);
            sd_notifyf(0, "STATUS=%s", status);
            status_sent_ = counts();
            status_sent_ns_ = now;
            status_due_ns_.reset();
        } else {
            status_due_ns_ = status_sent_ns_ + 1'000'000'000;
        }
    }
    if (watchdog_interval_ns_ && now >= watchdog_due_ns_) {
        sd_notify(0, "WATCHDOG=1");
        watchdog_due_ns_ = now + watchdog_interval_ns_;
    }
}

std::optional<std::int64_t> Server::notify_deadline() const {
    std::optional<std::int64_t> d = status_due_ns_;
    if (watchdog_interval_ns_ && (!d || watchdog_due_ns_ < *d)) d = watchdog_due_ns_;
    return d;
}

// ---------------------------------------------------------------------------
// Submissions

io_uring_sqe* Server::sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    while (!s) {
        // The SQ is full: hand it to the kernel to make room.
        (void)io_uring_submit(&ring_);
        s = io_uring_get_sqe(&ring_);
    }
    return s;
}

void Server::arm_accept() {
    io_uring_sqe* s = sqe();
    io_uring_prep_multishot_accept(s, listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, tag(Kind::accept));
    accept_armed_ = true;
}

void Server::arm_accept_retry() {
    io_uring_sqe* s = sqe();
    io_uring_prep_timeout(s, &accept_retry_ts_, 0, 0);
    io_uring_sqe_set_data64(s, tag(Kind::accept_retry));
}

void Server::arm_signal_read() {
    io_uring_sqe* s = sqe();
    io_uring_prep_read(s, signal_fd_.get(), &siginfo_, sizeof siginfo_, 0);
    io_uring_sqe_set_data64(s, tag(Kind::signal));
}

void Server::arm_hangup(Session& sess) {
    io_uring_sqe* s = sqe();
    io_uring_prep_poll_add(s, sess.sock.get(), POLLIN | POLLRDHUP | POLLHUP | POLLERR);
    io_uring_sqe_set_data64(s, tag(Kind::hangup, sess.id));
    sess.hangup_armed = true;
}

void Server::arm_doorbell(Session& sess) {
    const Channel::WaitTicket t = sess.requests.prepare_recv_wait();
    if (t.ready) {
        // A request (or a close) arrived while we looked: nothing was
        // announced, so there is nothing to finish; just serve again.
        enqueue(sess);
        return;
    }
    sleep_on(sess, t.seq);
}

// Queues the FUTEX_WAIT on a session's doorbell (announced, seq as read).
void Server::sleep_on(Session& sess, std::uint32_t seq) {
    io_uring_sqe* s = sqe();
    prep_futex_wait(s, sess.requests.recv_futex(), seq);
    io_uring_sqe_set_data64(s, tag(Kind::doorbell, sess.id));
    sess.doorbell_armed = true;
}

// arm_doorbell() for every session in idle_, with one heavy barrier for
// all of them: with many clients going quiet in the same pass, a
// membarrier per session was most of ipcd's CPU time (64 clients: 61%).
void Server::arm_idle_doorbells() {
    arming_.clear();
    for (SessionId id : idle_) {
        Session* s = find(id);
        if (!s) continue;
        s->idle = false;
        if (s->doomed) continue;
        s->requests.announce_recv_wait();
        arming_.push_back(s);
    }
    idle_.clear();
    if (arming_.empty()) return;
    ipc::heavy_barrier();  // every announcement above before every check below
    for (Session* s : arming_) {
        const Channel::WaitTicket t = s->requests.check_recv_wait();
        if (t.ready)
            enqueue(*s);  // nothing stays announced: nothing to finish
        else
            sleep_on(*s, t.seq);
    }
    arming_.clear();
}

void Server::cancel(std::uint64_t user_data) {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, user_data, 0);
    io_uring_sqe_set_data64(s, tag(Kind::cancel));
}

// ---------------------------------------------------------------------------
// Completions

void Server::on_accept(int res, unsigned flags) {
    bool retry_later = false;
    if (res >= 0) {
        UniqueFd sock(res);
        accept_error_logged_ = false;
        if (!stopping_) new_session(std::move(sock));
    } else if (res == -ECANCELED) {
        accept_armed_ = false;
        return;
    } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
        if (!accept_error_logged_)
            log::line(log::warning, "cannot accept connections on %s: %s; retrying every 100 ms",
                      socket_path_.c_str(), errstr(-res));
        accept_error_logged_ = true;
        retry_later = true;
    } else if (res != -ECONNABORTED && res != -EINTR && res != -EAGAIN) {
        if (!accept_error_logged_)
            log::line(log::err, "accept on %s failed: %s; retrying every 100 ms", socket_path_.c_str(),
                      errstr(-res));
        accept_error_logged_ = true;
        retry_later = true;
    }
    if (!(flags & IORING_CQE_F_MORE)) {
        accept_armed_ = false;
        if (stopping_) return;
        if (retry_later)
            arm_accept_retry();
        else
            arm_accept();
    }
}

void Server::on_signal(int res) {
    if (res == static_cast<int>(sizeof siginfo_)) {
        const std::uint32_t sig = siginfo_.ssi_signo;
        if (sig == SIGTERM || sig == SIGINT) {
            log::line(log::notice, "received %s from pid %u", signal_name(sig), siginfo_.ssi_pid);
            stop_requested_ = true;
            return;
        }
        if (sig == SIGHUP) {
            char why[64];
            std::snprintf(why, sizeof why, "SIGHUP from pid %u", siginfo_.ssi_pid);
            (void)reload(why);
        }
    } else if (res != -EAGAIN && res != -EINTR) {
        log::line(log::err, "reading signals failed: %s; stopping, as SIGTERM could no longer be received",
                  res < 0 ? errstr(-res) : "short read");
        stop_requested_ = true;
        return;
    }
    arm_signal_read();
}

void Server::on_hangup(SessionId id, int res) {
    Session* s = find(id);
    if (!s) return;
    s->hangup_armed = false;
    if (s->doomed || res == -ECANCELED) return;
    if (res < 0) {
        doom(*s, log::warning, std::string("its socket failed: ") + errstr(-res));
        return;
    }
    // Any event ends the session; which one decides how it is logged.
    char byte;
    const ssize_t n = ::recv(s->sock.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
        doom(*s, log::warning, "wrote to its socket, which the protocol forbids: dropped");
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !(res & (POLLHUP | POLLRDHUP | POLLERR))) {
        arm_hangup(*s);  // spurious: nothing to read and no hang-up
        return;
    }
    doom(*s, log::info, "disconnected");
}

void Server::on_doorbell(SessionId id, int res) {
    Session* s = find(id);
    if (!s) return;
    s->doorbell_armed = false;
    s->requests.finish_recv_wait();
    if (s->doomed) return;
    if (res < 0 && res != -EAGAIN && res != -EINTR && res != -ECANCELED) {
        doom(*s, log::err, std::string("waiting on its request ring failed: ") + errstr(-res));
        return;
    }
    enqueue(*s);
}

// ---------------------------------------------------------------------------
// Sessions

SessionId Server::allocate_id() {
    for (;;) {
        const SessionId id = next_id_++;
        if (id != 0 && sessions_.count(id) == 0 && !table_.has_session(id)) return id;
    }
}

Session* Server::find(SessionId id) {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : it->second.get();
}

void Server::new_session(UniqueFd sock) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(sock.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        log::line(log::warning, "cannot read the credentials of a new connection: %s; closing it", errstr(errno));
        return;
    }
    Peer peer{cred.pid, cred.uid, cred.gid, peer_groups(sock.get()), command_name(cred.pid)};
    const SessionId id = allocate_id();
    if (Result r = table_.add_session(id, peer); r != Result::ok) {
        // Refused: a Hello without a memfd, session id 0, `reserved` = why.
        if (refusal_logged_.insert(peer.uid).second)
            log::line(log::warning, "refusing sessions of uid %u (pid %d): it has %u, the per-user limit",
                      peer.uid, static_cast<int>(peer.pid), table_.sessions_of(peer.uid));
        proto::Hello no{proto::hello_magic, proto::version, 0, static_cast<std::uint32_t>(r), 0};
        (void)send_hello(sock.get(), no, -1);
        return;
    }
    auto s = std::make_unique<Session>();
    s->id = id;
    s->peer = std::move(peer);
    s->sock = std::move(sock);
    try {
        auto m = Mapping::create_memfd("ipcd-session", geometry_.size, true);
        auto* h = new (m->data()) proto::SessionHeader{};
        h->magic = proto::session_magic;
        h->version = proto::version;
        h->session_id = id;
        h->request_offset = geometry_.request_offset;
        h->reply_offset = geometry_.reply_offset;
        h->client_pid = static_cast<std::uint32_t>(s->peer.pid);
        h->client_uid = s->peer.uid;
        h->client_gid = s->peer.gid;
        h->ring_capacity = proto::ring_capacity;
        s->requests = Channel::create_in(m, geometry_.request_offset, ring_options());
        s->replies = Channel::create_in(m, geometry_.reply_offset, ring_options());
        s->mapping = std::move(m);
    } catch (const std::exception& e) {
        log::line(log::err, "session %u (pid %d, uid %u): cannot create its shared memory: %s; closing it", id,
                  static_cast<int>(s->peer.pid), s->peer.uid, e.what());
        table_.remove_session(id, clock_now(), outbox_);
        return;
    }
    const proto::Hello hello{proto::hello_magic, proto::version, id, 0, geometry_.size};
    if (!send_hello(s->sock.get(), hello, s->mapping->fd())) {
        log::line(log::debug, "session %u (pid %d, uid %u): went away during the handshake", id,
                  static_cast<int>(s->peer.pid), s->peer.uid);
        table_.remove_session(id, clock_now(), outbox_);
        return;
    }
    log::line(log::debug, "session %u: connected: pid %d, uid %u, gid %u", id, static_cast<int>(s->peer.pid),
              s->peer.uid, s->peer.gid);
    Session& ref = *s;
    sessions_.emplace(id, std::move(s));
    arm_hangup(ref);
    enqueue(ref);  // its first turn finds the ring empty and arms the doorbell
}

void Server::enqueue(Session& s) {
    if (s.queued || s.doomed) return;
    s.queued = true;
    ready_.push_back(s.id);
}

void Server::serve_ready() {
    // One turn for each session queued now; those that still have work
    // re-queue themselves behind the others.
    for (std::size_t n = ready_.size(); n > 0; --n) {
        const SessionId id = ready_.front();
        ready_.pop_front();
        Session* s = find(id);
        if (!s) continue;
        s->queued = false;
        if (!s->doomed) serve(*s);
    }
}

void Server::serve(Session& s) {
    const Now now = clock_now();
    for (unsigned i = 0; i < request_budget; ++i) {
        ipc::Message m;  // try_recv copies the slot out: the client cannot change it under us
        const Status st = s.requests.try_recv(m);
        if (st == Status::ok) {
            handle_request(s, m, now);
            if (s.doomed) return;
            continue;
        }
        if (st == Status::would_block) {
            go_idle(s);
            return;
        }
        doom(s, log::warning,
             st == Status::closed ? "closed its request ring, which the protocol forbids: dropped"
                                  : "corrupted its request ring: dropped");
        return;
    }
    enqueue(s);  // budget spent: the others go first
}

// One request: Op::reload is the loop's own (it reads a file); the table
// answers the rest. A release_session may end another session: the table
// has already given its permits back, and the loop closes its socket.
void Server::handle_request(Session& s, const ipc::Message& m, const Now& now) {
    if (m.label() == static_cast<std::uint32_t>(proto::Op::reload)) {
        Result r = Result::permission_denied;
        if (stopping_) {
            r = Result::stopping;
        } else if (s.peer.uid == 0) {
            char why[96];
            std::snprintf(why, sizeof why, "requested by session %u, pid %d", s.id, static_cast<int>(s.peer.pid));
            r = reload(why);
        }
        ipc::Message rep = proto::reply(m, r);
        rep.mr[2] = config_.semaphores.size();
        outbox_.push_back(Answer{s.id, rep});
        deliver();
        return;
    }
    table_.handle(s.id, m, now, outbox_);
    for (SessionId victim : table_.take_kicked()) {
        Session* v = find(victim);
        if (!v) continue;
        std::uint64_t permits = 0, waits = 0;
        for (const Answer& a : outbox_)
            if (a.session == s.id && a.reply.label() == static_cast<std::uint32_t>(proto::Op::release_session)) {
                permits = a.reply.mr[2];
                waits = a.reply.mr[3];
            }
        char why[160];
        std::snprintf(why, sizeof why,
                      "released by uid %u (session %u, pid %d): gave back %" PRIu64 " permit%s, cancelled %" PRIu64
                      " wait%s",
                      s.peer.uid, s.id, static_cast<int>(s.peer.pid), permits, permits == 1 ? "" : "s", waits,
                      waits == 1 ? "" : "s");
        v->released = true;
        if (v->doomed) {  // it was leaving anyway: the release is what happened to its permits
            v->drop_reason = why;
            v->drop_priority = log::notice;
        }
        doom(*v, log::notice, why);
    }
    deliver();
}

// A session whose ring just ran dry is likely to send again within a round
// trip (acquire, then release). Arming its futex wait costs a membarrier,
// which interrupts the client's CPU (tens of microseconds on these VMs) and
// then a cross-CPU wake per request. So it first joins idle_, and spin_idle()
// polls idle_ for a bounded, adaptive time; only sessions still quiet after
// that get their doorbells armed.
void Server::go_idle(Session& s) {
    if (spin_us_ == 0) {
        arm_doorbell(s);
        return;
    }
    if (s.idle) return;
    s.idle = true;
    idle_.push_back(s.id);
}

// Polls the idle sessions' request rings (Channel::readable(), which takes
// nothing) until one has a request, a completion is waiting, or the budget
// runs out. The budget is learned like the channel's: a spin that caught a
// request keeps at least twice its length; one that caught nothing halves
// it (a client on our own CPU cannot send while we spin). With other work
// queued it only looks once, so a flood elsewhere cannot starve idle
// sessions. Leaves idle_ empty or the loop with work to do, so
// wait_for_events() never sleeps on a session whose doorbell is unarmed.
void Server::spin_idle() {
    if (idle_.empty()) return;
    const auto poll_once = [&] {
        bool found = false;
        for (std::size_t i = 0; i < idle_.size();) {
            Session* s = find(idle_[i]);
            const bool gone = !s || s->doomed;
            if (gone || s->requests.readable()) {
                if (s) s->idle = false;
                if (!gone) {
                    enqueue(*s);
                    found = true;
                }
                idle_[i] = idle_.back();
                idle_.pop_back();
                continue;
            }
            ++i;
        }
        return found;
    };
    if (!ready_.empty() || !doomed_.empty()) {
        poll_once();
        return;
    }
    // Hand the kernel what is queued (hang-up polls, accepts) before we spin.
    io_uring_submit(&ring_);
    const std::int64_t limit = std::int64_t{spin_us_} * 1000;
    const std::int64_t budget = std::min(spin_budget_ns_, limit);
    const std::int64_t start = mono_ns();
    for (unsigned round = 0;; ++round) {
        if (poll_once()) {
            const std::int64_t took = mono_ns() - start;
            spin_budget_ns_ = std::clamp<std::int64_t>(std::max(budget, 2 * took), 2'000, limit);
            return;
        }
        if (idle_.empty() || io_uring_cq_ready(&ring_) != 0) return;  // other work first; spin again later
        if ((round & 15) == 15 && mono_ns() - start >= budget) break;
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
    }
    spin_budget_ns_ = std::max<std::int64_t>(budget / 2, 1'000);
    arm_idle_doorbells();
}

void Server::deliver() {
    for (const Answer& a : outbox_) {
        Session* s = find(a.session);
        if (!s || s->doomed) continue;
        const Status st = s->replies.try_send(a.reply);
        if (st == Status::ok) continue;
        doom(*s, log::warning,
             st == Status::would_block ? "does not read its replies (reply ring full): dropped"
                                       : "broke its reply ring: dropped");
    }
    outbox_.clear();
}

void Server::doom(Session& s, int priority, std::string reason) {
    if (s.doomed) return;
    s.doomed = true;
    s.drop_priority = priority;
    s.drop_reason = std::move(reason);
    doomed_.push_back(s.id);
}

void Server::drop_doomed() {
    while (!doomed_.empty()) {
        const SessionId id = doomed_.front();
        doomed_.pop_front();
        drop(id);
    }
}

void Server::drop(SessionId id) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    Session& s = *it->second;
    // Issue queued SQEs now: a doorbell wait prepared for this session must
    // reach the kernel while its futex word is still mapped.
    (void)io_uring_submit(&ring_);
    if (s.doorbell_armed) cancel(tag(Kind::doorbell, id));
    if (s.hangup_armed) cancel(tag(Kind::hangup, id));  // the poll pins the socket open
    const Departure d = table_.remove_session(id, clock_now(), outbox_);
    // One line per session end. A quiet goodbye is debug; one that gave
    // permits back or cancelled waits is worth an info line; violations
    // keep the priority they were doomed with.
    int priority = s.drop_priority;
    if (priority == log::info && d.permits_released == 0 && d.waits_cancelled == 0) priority = log::debug;
    if (s.released)
        log::line(priority, "session %u (pid %d, uid %u): %s", id, static_cast<int>(s.peer.pid), s.peer.uid,
                  s.drop_reason.c_str());
    else
        log::line(priority, "session %u (pid %d, uid %u): %s; gave back %" PRIu64 " permit%s on %u semaphore%s, cancelled %u wait%s",
              id, static_cast<int>(s.peer.pid), s.peer.uid, s.drop_reason.c_str(), d.permits_released,
              d.permits_released == 1 ? "" : "s", d.semaphores_held, d.semaphores_held == 1 ? "" : "s",
              d.waits_cancelled, d.waits_cancelled == 1 ? "" : "s");
    refusal_logged_.erase(s.peer.uid);
    sessions_.erase(it);
    deliver();
}

void Server::save_if_dirty() {
    // After a failure, retry at most once a second (each try may fsync).
    if (state_error_logged_ && mono_ns() < save_retry_ns_) return;
    if (!table_.take_persistent_dirty()) return;
    try {
        save_state(state_file_, table_.persistent());
        if (state_error_logged_) log::line(log::notice, "saved persistent semaphores again");
        state_error_logged_ = false;
    } catch (const std::exception& e) {
        // Still stale: the fencing-token reservation on disk may now lag
        // behind the tokens granted. Logged once until a save succeeds.
        table_.mark_persistent_dirty();
        save_retry_ns_ = mono_ns() + 1'000'000'000;
        if (!state_error_logged_)
            log::line(log::err, "cannot save persistent semaphores: %s; retrying every second; check the state "
                      "directory %s (space, permissions)", e.what(), state_dir_.c_str());
        state_error_logged_ = true;
    }
}

void Server::close_listener() {
    if (own_socket_file_) {
        // Unlink first: a client connecting from now on gets ENOENT, not a
        // connection that nobody will ever serve.
        ::unlink(socket_path_.c_str());
        own_socket_file_ = false;
    }
    if (accept_armed_) cancel(tag(Kind::accept));
    (void)io_uring_submit(&ring_);
    listen_fd_.reset();
}

}  // namespace

int run(const Options& options) {
    log::set_max_priority(options.verbose ? log::debug : log::info);
    Server server(options);
    return server.run();
}

}  // namespace ipcd
