// daemon/semaphore_table.hpp - ipcd's state: named counting semaphores, the
// sessions that hold and wait for their permits, and per-user accounting.
//
// A pure state machine: no sockets, no rings, no clocks, no configuration
// file. The event loop (server.cpp) feeds it requests as they come out of a
// session's ring, the current time, session arrivals and departures, and the
// parsed configuration (set_limits, set_create_policy, declare); the table
// answers with replies in an Outbox, addressed to sessions. One request
// yields exactly one reply, now (most operations) or later (an acquire that
// waits: a grant, a timeout, a delete, a stop). A release, a timeout, a
// departure, a delete or a change of a declared semaphore's permits may also
// produce grants for other sessions' waiters.
//
// Model
//
//   semaphore   name, permits, held (the sum of its holders' counts), owner
//               uid/gid, mode, persistent and declared flags, last fencing
//               token, holders (by session), FIFO waiters
//   session     peer credentials and command name, open handles (one per
//               semaphore per session, reference-counted by opens), pending
//               waits
//   handle      a session-local number naming one semaphore; it outlives a
//               removed semaphore (its operations then answer not_found)
//               until closed
//
// Permits belong to the session, per semaphore, so there is one handle per
// (session, semaphore): opening a name twice in one session returns the same
// handle with its open count raised, and close lowers it. The last close is
// refused (busy) while the session holds or waits for permits through it.
//
// Grants are strictly FIFO, and only while held + count <= permits: a waiter
// at the head that does not fit blocks every waiter behind it, and an
// acquire that finds a queue waits behind it even if its own count fits.
// "available" (stat, list) is max(0, permits - held): after a declared
// semaphore's permits are lowered below what is held, holders keep their
// permits and nothing is granted until enough are released.
//
// Access (like files): the read bit allows stat, holder and waiter; the write
// bit allows acquire; open needs either. Release needs no bit: it gives back
// only what was granted (even after a reload took the write bit away). The owner class applies
// when the peer's uid is the owner, else the group class when its primary or
// a supplementary gid is the semaphore's group, else "other". uid 0 bypasses
// the checks and the per-user limits. Only the owner or root removes, and
// nobody removes a declared semaphore (Result::declared). Creating needs the
// CreatePolicy's consent (Result::permission_denied otherwise).
//
// Limits: the defaults (Limits) with per-uid exceptions (UserLimits), see
// set_limits(). A limit lowered below a user's current usage takes nothing
// away; it refuses new sessions, semaphores or waits of that user until the
// usage has dropped below it.
//
// Declared semaphores (declare()) come from the configuration file: they are
// persistent, counted against nobody's semaphore limit, and not removable by
// clients; the configuration alone changes their permits, owner, group and
// mode.
//
// Administration: Op::sessions lists sessions (anyone), Op::usage reports a
// uid's usage against its limits (anyone, about any uid), and
// Op::release_session (root) ends another session exactly as
// remove_session() would; the daemon then closes that session's socket
// (take_kicked()). Op::reload is the daemon's to answer (it re-reads the
// configuration file); should one reach the table it answers
// permission_denied to non-root and unknown_op to root.
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

// What declare() did, by semaphore name (for the daemon's log lines).
struct DeclareReport {
    std::vector<std::string> created;     // did not exist: created, declared
    std::vector<std::string> changed;     // declared before; permits/owner/group/mode updated
    std::vector<std::string> adopted;     // existed undeclared (a client's or a restored one): now declared
    std::vector<std::string> undeclared;  // declared before, absent now: kept as an ordinary persistent semaphore
    std::vector<std::string> refused;     // unusable entry (bad name, permits 0, mode > 0777) or a
                                          // repeated name: ignored; a semaphore of that name stays as it was
};

class SemaphoreTable {
public:
    // `limits` are the defaults for every uid; see set_limits().
    explicit SemaphoreTable(Limits limits = {}) : limits_(limits) {}

    // --- Configuration ----------------------------------------------------------

    // Replaces the limits: `defaults` for every uid, with `per_user`'s set
    // fields overriding them for that uid. Nothing already granted is taken
    // back: a user above a lowered limit keeps what it has, and is refused
    // (Result::limit) new sessions / semaphores / waits until below it.
    // handles_per_session has no per-user form. Root stays exempt from the
    // per-user limits whatever its entry says.
    void set_limits(const Limits& defaults, std::map<uid_t, UserLimits> per_user);
    // The limits that apply to `uid` (the defaults with its overrides). For
    // uid 0 this is what the configuration says, though root is not held to it.
    Limits limits_for(uid_t uid) const;

    // Replaces who may create semaphores (Op::create); existing semaphores
    // are not affected.
    void set_create_policy(CreatePolicy policy) { policy_ = std::move(policy); }
    // Root always; anyone if policy.anyone; else a listed uid, or a listed
    // gid as the peer's primary or a supplementary group.
    bool may_create(const Peer& peer) const;

    // Applies the whole declared set (call after restore() at start, and on
    // every reload). For each entry: a missing semaphore is created (no
    // holders; persistent, declared, uncounted); a declared one gets the
    // entry's permits, owner, group and mode; an undeclared one of that name
    // (a client's, or restored from the state file) is adopted: it becomes
    // declared, persistent and uncounted (its creator's usage drops), and
    // takes the entry's attributes. Holders and handles are kept throughout.
    // Previously declared names absent from `decls` stop being declared and
    // remain as ordinary persistent semaphores counted against nobody.
    // Refused entries (see DeclareReport) change nothing, so a semaphore
    // declared before stays declared.
    //
    // Changing permits keeps every holder. Raising grants waiters (FIFO,
    // replies to `out`); lowering grants nothing until held + count <= the
    // new permits, and answers too_many at once to each waiter that wants
    // more than the new permits. The persistent state goes dirty when a
    // semaphore is created, adopted or changed.
    DeclareReport declare(const std::vector<Declared>& decls, const Now& now, Outbox& out);

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
    // The sessions ended by Op::release_session since the last call, in the
    // order they were ended (returned and cleared). The table has already
    // removed them (as remove_session() would); the daemon closes their
    // sockets, and its later remove_session() of such an id is a no-op.
    std::vector<SessionId> take_kicked() { return std::exchange(kicked_, {}); }

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
    // The default limits (set_limits()' `defaults`).
    const Limits& limits() const noexcept { return limits_; }
    // For Op::status.
    void set_daemon_info(pid_t pid, std::int64_t started_real_s) noexcept {
        daemon_pid_ = pid;
        started_s_ = started_real_s;
    }
    // The number of sessions `uid` has (for the refusal log).
    std::uint32_t sessions_of(uid_t uid) const;

    // --- Persistence ------------------------------------------------------------

    // The persistent semaphores, by name, declared ones included (their
    // token reservation must survive restarts too). The declared flag is not
    // saved: declare() after restore() adopts them again.
    std::vector<Definition> persistent() const;
    // Recreates a saved semaphore with no holders, counted against its
    // owner like a created one (until declare() adopts it). Result::exists or
    // invalid_argument if the definition is unusable.
    Result restore(const Definition& d);
    // True once after the saved state went stale (a persistent semaphore was
    // created, removed, adopted or changed by declare(), or its grants
    // crossed the reserved token mark): the daemon then saves persistent().
    bool take_persistent_dirty() noexcept { return std::exchange(persistent_dirty_, false); }
    // A save failed: the state is still stale (the daemon retries).
    void mark_persistent_dirty() noexcept { persistent_dirty_ = true; }
    // Fencing tokens of semaphores created from now on start above `floor`
    // (ipcd sets it when the saved state, with its token reservations, was
    // lost: tokens granted before must never come again).
    void set_token_floor(std::uint64_t floor) noexcept { token_floor_ = floor; }

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
        // Sum of the holders' counts. Grants keep held <= permits, so it fits
        // 32 bits, but lowered permits may leave held > permits for a while.
        std::uint64_t held = 0;
        uid_t owner = 0;
        gid_t group = 0;
        std::uint32_t mode = 0;
        bool persistent = false;
        bool declared = false;  // from the configuration file (declare()); implies persistent
        bool counted = false;   // counted against owner's semaphores_per_user
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
    std::optional<Message> op_sessions(const Message& req);
    std::optional<Message> op_release_session(SessionId id, SessionRec& s, const Message& req, const Now& now,
                                              Outbox& out);
    std::optional<Message> op_usage(SessionRec& s, const Message& req);

    // A new semaphore, indexed by name, with no holders (the caller does the
    // accounting and the persistent-dirty flag).
    Sem& add_sem(const std::string& name, std::uint32_t permits, uid_t owner, gid_t group, std::uint32_t mode,
                 bool persistent, bool counted);
    // The semaphore behind a handle of `s`: bad_handle / not_found otherwise.
    Result lookup(SessionRec& s, std::uint64_t handle, Sem*& sem);
    static bool allowed(const Sem& sem, const Peer& peer, unsigned want);
    bool limited(uid_t uid) const noexcept { return uid != 0; }
    Result open_handle(SessionRec& s, SemId sem, std::uint64_t& handle);
    static std::uint32_t available(const Sem& sem) noexcept {
        return sem.held >= sem.permits ? 0u : static_cast<std::uint32_t>(sem.permits - sem.held);
    }
    static bool fits(const Sem& sem, std::uint32_t count) noexcept { return sem.held + count <= sem.permits; }
    // Grants waiters at the head of `sem` while the head fits (FIFO).
    void pump(Sem& sem, const Now& now, Outbox& out);
    // Sets a semaphore's permits, keeping its holders (see declare()).
    void set_permits(Sem& sem, std::uint32_t permits, const Now& now, Outbox& out);
    // Drops uid's accounting entry once it counts nothing.
    void forget_if_idle(uid_t uid);
    void grant(Sem& sem, SessionId session, std::uint32_t count, const Now& now);
    // Unlinks a waiter everywhere (queue, deadline index, accounting).
    void unlink_waiter(Sem& sem, std::list<Waiter>::iterator it);
    void erase_sem(Sem& sem, Outbox& out);

    Limits limits_;
    std::map<uid_t, UserLimits> per_user_;
    CreatePolicy policy_;
    std::unordered_map<SemId, Sem> sems_;
    std::map<std::string, SemId, std::less<>> by_name_;  // ordered: list by index
    std::map<SessionId, SessionRec> sessions_;            // ordered: Op::sessions by index
    std::unordered_map<uid_t, Usage> usage_;
    std::unordered_map<WaitId, WaitRef> waits_;
    std::set<std::pair<std::int64_t, WaitId>> deadlines_;
    std::vector<SessionId> kicked_;
    SemId next_sem_ = 1;
    WaitId next_wait_ = 1;
    bool stopping_ = false;
    bool persistent_dirty_ = false;
    std::uint64_t token_floor_ = 0;
    pid_t daemon_pid_ = 0;
    std::int64_t started_s_ = 0;
};

}  // namespace ipcd
