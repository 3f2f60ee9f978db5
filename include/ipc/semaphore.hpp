// ipc/semaphore.hpp - the client API of ipcd, the semaphore daemon.
//
// A Session is one connection to ipcd: a Unix socket plus a private pair of
// shared-memory rings (see ipc/protocol.hpp). A Semaphore is a named counting
// semaphore owned by the daemon and opened through a session. Permits belong
// to the session: when every descriptor of the session's socket is closed
// (the process exits, crashes or is killed), the daemon gives them back.
//
//   auto s = ipc::Session::connect();                 // $IPCD_SOCKET or default
//   auto sem = ipc::Semaphore::open(s, "db-writers");
//   if (auto ec = sem.acquire(1)) { ... ec.message() ... }
//   ... sem.fencing_token() ...
//   (void)sem.release(1);
//
//   { ipc::SemaphoreGuard g(sem, 2); ... }            // RAII
//
// Threads: a Session and its Semaphores may be used from many threads at
// once; a thread blocked in acquire() does not block others' calls.
//
// Fork: the session socket is O_CLOEXEC, so an exec'd program does not
// inherit it unless set_inheritable(true). A forked child shares the session
// (and so keeps its permits alive until it exits) but must not make calls on
// it while the parent does.
//
// Errors: connect/create/open throw std::system_error; acquire/release
// return std::error_code. Daemon answers use ipc::daemon_category() with
// the values of ipc::proto::Result; transport failures use errno values:
// ECONNREFUSED/ENOENT at connect ("no daemon at PATH: is ipcd running?"),
// EPROTO (version mismatch or malformed handshake), ECONNRESET (the daemon
// went away: every call fails fast, none hangs; connect again once it is
// back).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "ipc/message.hpp"
#include "ipc/protocol.hpp"

namespace ipc {

// The category of daemon answers ("ipcd"); values are proto::Result.
const std::error_category& daemon_category() noexcept;

namespace proto {
inline std::error_code make_error_code(Result r) noexcept { return {static_cast<int>(r), daemon_category()}; }
}  // namespace proto

struct DaemonStatus {
    std::uint64_t sessions;
    std::uint64_t semaphores;
    std::uint64_t waiting;
    pid_t pid;
    std::chrono::system_clock::time_point started;
};

struct HolderInfo {
    pid_t pid;
    uid_t uid;
    std::uint32_t count;  // permits held (holders) or wanted (waiters)
    std::chrono::system_clock::time_point since;
    std::uint32_t session;
};

struct SemaphoreInfo {
    std::string name;
    std::uint32_t permits = 0;
    std::uint32_t available = 0;
    std::uint32_t holder_count = 0;
    std::uint32_t waiter_count = 0;
    uid_t owner = 0;
    gid_t group = 0;
    mode_t mode = 0;
    bool persistent = false;
    std::uint64_t last_token = 0;
    // Declared in ipcd's configuration file: created by the daemon, always
    // persistent, and not removable by clients (Result::declared).
    bool declared = false;
    std::vector<HolderInfo> holders;  // filled by Semaphore::stat(true)
    std::vector<HolderInfo> waiters;  // FIFO order
};

// One connected session, as Session::sessions() reports it.
struct SessionInfo {
    std::uint32_t id = 0;            // the daemon's session id
    pid_t pid = 0;                   // the process that connected (SO_PEERCRED)
    uid_t uid = 0;
    gid_t gid = 0;
    std::uint32_t permits_held = 0;  // over all semaphores
    std::uint32_t waits = 0;         // acquires pending
    // The connecting process's command name (/proc/PID/comm at connect, at
    // most 15 bytes). Chosen by that process: may hold any byte but NUL, so
    // escape it before printing it to a terminal.
    std::string comm;
};

// What Session::release_session() gave back.
struct ReleaseResult {
    std::uint64_t permits_released = 0;
    std::uint32_t waits_cancelled = 0;
};

// A uid's use of ipcd's per-user limits (Session::usage()).
struct UsageInfo {
    struct Count {
        std::uint32_t used = 0;
        std::uint32_t limit = 0;  // 0: no limit (root is exempt)
    };
    uid_t uid = 0;
    Count sessions;
    Count semaphores;                      // semaphores the uid owns
    Count waits;                           // acquires pending
    std::uint32_t handles_per_session = 0; // limit per session; 0: none
    bool may_create = false;               // may create semaphores
};

class Session : public std::enable_shared_from_this<Session> {
public:
    // The socket path used when none is given: $IPCD_SOCKET if set, else
    // /run/ipcd/ipcd.sock for root, else $XDG_RUNTIME_DIR/ipcd.sock.
    static std::string default_socket_path();

    // Connects, receives the session memfd and checks the protocol version.
    // An empty path means default_socket_path(). Throws std::system_error.
    static std::shared_ptr<Session> connect(std::string_view socket_path = {});

    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Sends `req` (mr[0] is overwritten with a fresh request id) and waits
    // for its reply. Thread-safe. On transport failure returns an error and
    // leaves `reply` untouched; a daemon answer is returned in `reply` and
    // the error is make_error_code(Result) unless Result::ok.
    std::error_code call(const Message& request, Message& reply) noexcept;

    DaemonStatus status();                   // throws std::system_error
    std::vector<SemaphoreInfo> list();       // summaries, no holder details
    SemaphoreInfo stat(std::string_view name, bool details = true);

    // --- Administration (ipcctl sessions, release-session, reload, status) --
    // Each throws std::system_error as the calls above do; a daemon older
    // than these operations answers Result::unknown_op.

    // Every connected session, this one included, in id order. Anyone may
    // ask.
    std::vector<SessionInfo> sessions();
    // Ends session `id` as if its client had died: its permits are given
    // back, its waits cancelled, its socket closed. Root only
    // (Result::permission_denied); Result::not_found if there is no such
    // session; Result::invalid_argument for this session's own id.
    ReleaseResult release_session(std::uint32_t id);
    // Makes ipcd re-read its configuration file (as SIGHUP does) and returns
    // how many semaphores it now declares. Root only. Result::bad_config if
    // the file is invalid: the running configuration stays, and ipcd's log
    // says where and why.
    std::uint32_t reload();
    // The use and limits of `uid` (default: the caller's uid). Asking about
    // another uid may be refused (Result::permission_denied) to non-root.
    UsageInfo usage(std::optional<uid_t> uid = {});

    std::uint32_t id() const noexcept;
    int socket_fd() const noexcept;
    const std::string& socket_path() const noexcept;
    // Clears or sets FD_CLOEXEC on the session socket (ipcctl acquire lets
    // its command inherit the session, like flock(1)).
    void set_inheritable(bool inheritable);

    struct Impl;

private:
    explicit Session(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

class Semaphore {
public:
    // Creates NAME with `permits` permits, owned by the caller's uid/gid,
    // with permission bits `mode` (r: stat, w: acquire/release, for owner,
    // group, others). `persist`: survives a daemon restart. Throws
    // std::system_error (exists, permission_denied, limit, invalid_argument).
    static Semaphore create(std::shared_ptr<Session> session, std::string_view name, std::uint32_t permits,
                            mode_t mode = 0600, bool persist = false);
    static Semaphore open(std::shared_ptr<Session> session, std::string_view name);
    // Deletes NAME (owner or root); its waiters get Result::deleted.
    // Result::declared if ipcd's configuration file declares it (remove it
    // there and reload instead).
    static void remove(Session& session, std::string_view name);

    Semaphore() = default;
    Semaphore(Semaphore&& other) noexcept;
    // Closes this handle first (as the destructor does), then takes over.
    Semaphore& operator=(Semaphore&& other) noexcept;
    ~Semaphore();  // closes the handle; permits still held stay held until released or the session ends

    // Blocks until `n` permits are granted, first come first served.
    [[nodiscard]] std::error_code acquire(std::uint32_t n = 1) noexcept;
    // Never waits: Result::would_block if the grant is not possible now.
    [[nodiscard]] std::error_code try_acquire(std::uint32_t n = 1) noexcept;
    // Waits at most `timeout`: Result::timed_out.
    [[nodiscard]] std::error_code acquire_for(std::uint32_t n, std::chrono::nanoseconds timeout) noexcept;
    // Gives back `n` permits this session holds: Result::over_release if it
    // holds fewer.
    [[nodiscard]] std::error_code release(std::uint32_t n = 1) noexcept;

    // The fencing token of this handle's most recent grant, by any thread
    // (0 before any): grows with every grant of the semaphore, so a
    // resource can refuse a holder whose token is older than one it has
    // already seen. Threads sharing a handle should take the token of their
    // own grant from SemaphoreGuard::token() instead.
    std::uint64_t fencing_token() const noexcept { return token_.load(std::memory_order_relaxed); }
    SemaphoreInfo stat(bool details = true);
    const std::string& name() const noexcept { return name_; }
    bool valid() const noexcept { return session_ != nullptr; }

private:
    Semaphore(std::shared_ptr<Session> s, std::string name, std::uint64_t handle) noexcept
        : session_(std::move(s)), name_(std::move(name)), handle_(handle) {}
    friend class SemaphoreGuard;
    std::error_code acquire_impl(std::uint32_t n, std::uint64_t timeout_ns, std::uint64_t* token) noexcept;
    void close_handle() noexcept;

    std::shared_ptr<Session> session_;
    std::string name_;
    std::uint64_t handle_ = 0;
    // Relaxed: a report of the latest grant, ordered by nothing else.
    std::atomic<std::uint64_t> token_{0};
};

// Acquires on construction (throws std::system_error on failure), releases
// on destruction.
class SemaphoreGuard {
public:
    explicit SemaphoreGuard(Semaphore& sem, std::uint32_t n = 1);
    ~SemaphoreGuard();
    SemaphoreGuard(const SemaphoreGuard&) = delete;
    SemaphoreGuard& operator=(const SemaphoreGuard&) = delete;
    std::uint64_t token() const noexcept { return token_; }

private:
    Semaphore& sem_;
    std::uint32_t n_;
    std::uint64_t token_;
};

}  // namespace ipc

template <>
struct std::is_error_code_enum<ipc::proto::Result> : std::true_type {};
