// daemon/semaphore_table.hpp - ipcd's state: named counting semaphores, the
// sessions that hold and wait for their permits, and per-user accounting.
//
// A pure state machine: no sockets, no rings, no clocks. The event loop
// (server.cpp) feeds it requests as they come out of a session's ring, the
// current time, and session arrivals and departures; the table answers with
// replies in an Outbox, addressed to sessions. One request yields exactly one
// reply, now (most operations) or later (an acquire that waits: a grant, a
// timeout, a delete, a stop). A release, a timeout, a departure or a delete
// may also produce grants for other sessions' waiters.
//
// Model
//
//   semaphore   name, permits, available, owner uid/gid, mode, persistent
//               flag, last fencing token, holders (by session), FIFO waiters
//   session     peer credentials, open handles (one per semaphore per
//               session, reference-counted by opens), pending waits
//   handle      a session-local number naming one semaphore; it outlives a
//               removed semaphore (its operations then answer not_found)
//               until closed
//
// Permits belong to the session, per semaphore, so there is one handle per
// (session, semaphore): opening a name twice in one session returns the same
// handle with its open count raised, and close lowers it. The last close is
// refused (busy) while the session holds or waits for permits through it.
//
// Grants are strictly FIFO: a waiter at the head that wants more than is
// available blocks every waiter behind it, and an acquire that finds a queue
// waits behind it even if its own count is available.
//
// Access (like files): the read bit allows stat, holder and waiter; the write
// bit allows acquire and release; open needs either. The owner class applies
// when the peer's uid is the owner, else the group class when its primary or
// a supplementary gid is the semaphore's group, else "other". uid 0 bypasses
// the checks and the per-user limits. Only the owner or root removes.
//
// Time: `Now` carries CLOCK_MONOTONIC (deadlines) and CLOCK_REALTIME ("since"
// fields) in nanoseconds, supplied by the caller, so tests drive time by hand.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ipc/message.hpp"
#include "ipc/protocol.hpp"

namespace ipcd {

using ipc::Message;
using ipc::proto::Result;

using SessionId = std::uint32_t;

// Who is at the other end of a session (SO_PEERCRED, SO_PEERGROUPS).
struct Peer {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // supplementary groups, may be empty
    std::string comm;           // command name (/proc/PID/comm at connect), for Op::sessions
};

struct Limits {
    std::uint32_t sessions_per_user = 64;
    std::uint32_t semaphores_per_user = 256;   // created and not yet removed
    std::uint32_t waits_per_user = 1024;       // pending acquires
    std::uint32_t handles_per_session = 4096;  // open handles, dangling ones included
};

// Per-uid exceptions to the default Limits (from the configuration file);
// an unset field takes the default.
struct UserLimits {
    std::optional<std::uint32_t> sessions;
    std::optional<std::uint32_t> semaphores;
    std::optional<std::uint32_t> waits;
};

// Who may create semaphores (Op::create). Root always may. With `anyone`
// every uid may; otherwise only the listed uids and members (primary or
// supplementary) of the listed gids.
struct CreatePolicy {
    bool anyone = true;
    std::vector<uid_t> users;
    std::vector<gid_t> groups;
};

// A semaphore declared in the configuration file: created at start (and on
// reload) with these attributes, persistent, and not removable by clients.
struct Declared {
    std::string name;
    std::uint32_t permits = 0;
    uid_t owner = 0;
    gid_t group = 0;
    std::uint32_t mode = 0;
};

struct Now {
    std::int64_t mono_ns = 0;  // CLOCK_MONOTONIC
    std::int64_t real_ns = 0;  // CLOCK_REALTIME
};

// A reply owed to a session.
struct Answer {
    SessionId session;
    Message reply;
};
using Outbox = std::vector<Answer>;

// What a session's departure gave back (for the daemon's log line).
struct Departure {
    std::uint64_t permits_released = 0;
    std::uint32_t semaphores_held = 0;
    std::uint32_t waits_cancelled = 0;
    std::uint32_t handles = 0;
};

// A persistent semaphore's definition, as saved across restarts.
// last_token is a reservation: every token granted so far is <= it.
struct Definition {
    std::string name;
    std::uint32_t permits = 0;
    uid_t owner = 0;
    gid_t group = 0;
    std::uint32_t mode = 0;
    std::uint64_t last_token = 0;
};

class SemaphoreTable {
public:
    explicit SemaphoreTable(Limits limits = {}) : limits_(limits) {}

    // --- Sessions -------------------------------------------------------------

    // Registers a new session. Result::limit if the peer's uid already has
    // limits.sessions_per_user sessions (root is exempt); nothing changes then.
    Result add_session(SessionId id, const Peer& peer);
    // Forgets a session: cancels its waits (no replies: nobody is left to read
    // them), gives back every permit it held, granting waiters in FIFO order
    // (their replies go to `out`), and closes its handles. Unknown ids are
    // ignored.
    Departure remove_session(SessionId id, const Now& now, Outbox& out);
    bool has_session(SessionId id) const { return sessions_.count(id) != 0; }

    // --- Requests -------------------------------------------------------------

    // Handles one request of session `id` (which must have been added). The
    // message is untrusted: every register is validated. Appends the reply
    // to `out` unless the request waits (acquire with a timeout).
    void handle(SessionId id, const Message& req, const Now& now, Outbox& out);

    // --- Time and shutdown ----------------------------------------------------

    // The earliest deadline (CLOCK_MONOTONIC ns) of a waiting acquire.
    std::optional<std::int64_t> next_deadline() const;
    // Answers timed_out to every waiter whose deadline is <= now.mono_ns,
    // granting whoever that unblocks.
    void expire(const Now& now, Outbox& out);
    // Answers stopping to every waiter; from now on an acquire that would
    // wait is answered stopping at once.
    void stop(Outbox& out);
    bool stopping() const noexcept { return stopping_; }

    // --- Introspection ----------------------------------------------------------

    std::size_t session_count() const noexcept { return sessions_.size(); }
    std::size_t semaphore_count() const noexcept { return sems_.size(); }
    std::size_t waiting_count() const noexcept { return waits_.size(); }
    const Limits& limits() const noexcept { return limits_; }
    // For Op::status.
    void set_daemon_info(pid_t pid, std::int64_t started_real_s) noexcept {
        daemon_pid_ = pid;
        started_s_ = started_real_s;
    }
    // The number of sessions `uid` has (for the refusal log).
    std::uint32_t sessions_of(uid_t uid) const;

    // --- Persistence ------------------------------------------------------------

    // The persistent semaphores, by name.
    std::vector<Definition> persistent() const;
    // Recreates a saved semaphore with no holders. Result::exists or
    // invalid_argument if the definition is unusable.
    Result restore(const Definition& d);
    // True once after the saved state went stale (a persistent semaphore was
    // created or removed, or its grants crossed the reserved token mark):
    // the daemon then saves persistent().
    bool take_persistent_dirty() noexcept { return std::exchange(persistent_dirty_, false); }

private:
    using SemId = std::uint64_t;
    using WaitId = std::uint64_t;

    struct Holding {
        std::uint32_t count = 0;
        std::int64_t since_real = 0;
    };
    struct Waiter {
        WaitId id;
        SessionId session;
        std::uint64_t request_id;
        std::uint32_t count;
        std::int64_t since_real;
        std::int64_t deadline;  // CLOCK_MONOTONIC ns; no_deadline: forever
    };
    struct Sem {
        SemId id = 0;
        std::string name;
        std::uint32_t permits = 0;
        std::uint32_t available = 0;
        uid_t owner = 0;
        gid_t group = 0;
        std::uint32_t mode = 0;
        bool persistent = false;
        bool counted = false;  // counted against owner's semaphores_per_user
        std::uint64_t last_token = 0;
        // Persistent only: tokens up to token_mark are reserved in the saved
        // state, so a restart (even after a crash) never hands out a token
        // that was already granted. Crossing the mark reserves another block.
        std::uint64_t token_mark = 0;
        std::map<SessionId, Holding> holders;  // ordered: holder iteration by index
        std::list<Waiter> waiters;             // FIFO
    };
    struct HandleRec {
        SemId sem;
        std::uint32_t opens;
    };
    struct SessionRec {
        Peer peer;
        std::map<std::uint64_t, HandleRec> handles;
        std::unordered_map<SemId, std::uint64_t> by_sem;
        std::uint64_t next_handle = 1;
        std::uint32_t waits = 0;
    };
    struct Usage {
        std::uint32_t sessions = 0;
        std::uint32_t semaphores = 0;
        std::uint32_t waits = 0;
    };
    struct WaitRef {
        SemId sem;
        std::list<Waiter>::iterator it;
    };

    static constexpr std::int64_t no_deadline = INT64_MAX;
    static constexpr std::uint64_t token_block = 1u << 16;  // grants per state save, persistent semaphores
    static constexpr unsigned want_read = 4, want_write = 2;

    // Operations: each returns the reply (or nothing when the request waits).
    std::optional<Message> op_create(SessionRec& s, const Message& req);
    std::optional<Message> op_open(SessionRec& s, const Message& req);
    std::optional<Message> op_acquire(SessionId id, SessionRec& s, const Message& req, const Now& now);
    std::optional<Message> op_release(SessionId id, SessionRec& s, const Message& req, const Now& now,
                                      Outbox& out);
    std::optional<Message> op_stat(SessionRec& s, const Message& req);
    std::optional<Message> op_holder(SessionRec& s, const Message& req, bool waiters);
    std::optional<Message> op_list(const Message& req);
    std::optional<Message> op_remove(SessionRec& s, const Message& req, Outbox& out);
    std::optional<Message> op_close(SessionId id, SessionRec& s, const Message& req);
    std::optional<Message> op_status(const Message& req);

    // The semaphore behind a handle of `s`: bad_handle / not_found otherwise.
    Result lookup(SessionRec& s, std::uint64_t handle, Sem*& sem);
    static bool allowed(const Sem& sem, const Peer& peer, unsigned want);
    bool limited(uid_t uid) const noexcept { return uid != 0; }
    Result open_handle(SessionRec& s, SemId sem, std::uint64_t& handle);
    // Grants waiters at the head of `sem` while the head fits (FIFO).
    void pump(Sem& sem, const Now& now, Outbox& out);
    void grant(Sem& sem, SessionId session, std::uint32_t count, const Now& now);
    // Unlinks a waiter everywhere (queue, deadline index, accounting).
    void unlink_waiter(Sem& sem, std::list<Waiter>::iterator it);
    void erase_sem(Sem& sem, Outbox& out);

    Limits limits_;
    std::unordered_map<SemId, Sem> sems_;
    std::map<std::string, SemId, std::less<>> by_name_;  // ordered: list by index
    std::unordered_map<SessionId, SessionRec> sessions_;
    std::unordered_map<uid_t, Usage> usage_;
    std::unordered_map<WaitId, WaitRef> waits_;
    std::set<std::pair<std::int64_t, WaitId>> deadlines_;
    SemId next_sem_ = 1;
    WaitId next_wait_ = 1;
    bool stopping_ = false;
    bool persistent_dirty_ = false;
    pid_t daemon_pid_ = 0;
    std::int64_t started_s_ = 0;
};

}  // namespace ipcd
