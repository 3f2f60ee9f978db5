// ipc/protocol.hpp - the ipcd wire protocol: handshake, session segment,
// and every request and reply message.
//
// A client connects to ipcd's Unix socket (SOCK_STREAM). The daemon reads the
// peer's credentials (SO_PEERCRED), creates the session's memfd, seals it
// against shrinking and growing, and sends one Hello with the memfd attached
// (SCM_RIGHTS). From then on the client writes nothing to the socket: it only
// keeps it open, and the session lives exactly as long as some process holds
// a descriptor of it. All calls travel over the two SPSC channels in the
// memfd: requests client -> daemon, replies daemon -> client.
//
// Every request and reply is one ipc::Message:
//
//   tag.label   Op
//   tag.flags   request: op-specific flags; reply: reply_flag | op flags
//   mr[0]       request id, chosen by the client, echoed in the reply
//   mr[1]       request: the handle (ops on an open semaphore) or 0
//               reply: Result
//   mr[2..6]    op-specific, below
//
// Names travel in four registers (32 bytes, NUL-padded, see pack_name()).
// docs/protocol.md draws every message; the static_asserts check layouts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "ipc/message.hpp"

namespace ipc::proto {

inline constexpr std::uint32_t version = 1;

// ---------------------------------------------------------------------------
// Handshake: the only bytes ever written to the socket, daemon -> client.

inline constexpr std::uint32_t hello_magic = 0x44435049;  // "IPCD"

struct Hello {
    std::uint32_t magic;         // hello_magic
    std::uint32_t version;       // proto::version of the daemon
    std::uint32_t session_id;    // unique for the daemon's lifetime; 0: refused
    std::uint32_t reserved;      // 0; in a refusal (no memfd attached) the Result why
    std::uint64_t segment_size;  // bytes of the attached memfd
};
static_assert(sizeof(Hello) == 24 && std::is_trivially_copyable_v<Hello>, "Hello is sent as raw bytes");

// ---------------------------------------------------------------------------
// The session segment (memfd): a header line, then the request channel at
// request_offset and the reply channel at reply_offset (both SPSC,
// ring_capacity slots, laid out as in ipc/shm_layout.hpp).

inline constexpr std::uint64_t session_magic = 0x0053534553435049ull;  // "IPCSESS\0"
inline constexpr std::uint32_t ring_capacity = 64;

struct alignas(64) SessionHeader {
    std::uint64_t magic;           // session_magic
    std::uint32_t version;         // proto::version
    std::uint32_t session_id;
    std::uint64_t request_offset;  // from the start of the segment
    std::uint64_t reply_offset;
    std::uint32_t client_pid;      // from SO_PEERCRED at accept
    std::uint32_t client_uid;
    std::uint32_t client_gid;
    std::uint32_t ring_capacity;
};
static_assert(sizeof(SessionHeader) == 64 && std::is_standard_layout_v<SessionHeader>,
              "the session header is one cache line before the request channel");

// ---------------------------------------------------------------------------
// Names: 1 to 32 bytes of [A-Za-z0-9._-], not starting with '.'.

inline constexpr std::size_t name_max = 32;

constexpr bool valid_name(std::string_view n) noexcept {
    if (n.empty() || n.size() > name_max || n.front() == '.') return false;
    for (char c : n)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    return true;
}

// Writes `n` (valid_name) into mr[first .. first+3], NUL-padded.
inline void pack_name(Message& m, unsigned first, std::string_view n) noexcept {
    char buf[name_max] = {};
    std::memcpy(buf, n.data(), n.size() < name_max ? n.size() : name_max);
    std::memcpy(&m.mr[first], buf, name_max);
}

// Reads a name from mr[first .. first+3]; nullopt if it breaks the rules
// (the daemon calls this on untrusted input).
inline std::optional<std::string> unpack_name(const Message& m, unsigned first) {
    char buf[name_max];
    std::memcpy(buf, &m.mr[first], name_max);
    std::size_t len = 0;
    while (len < name_max && buf[len] != '\0') ++len;
    for (std::size_t i = len; i < name_max; ++i)
        if (buf[i] != '\0') return std::nullopt;  // bytes after the terminator
    std::string s(buf, len);
    if (!valid_name(s)) return std::nullopt;
    return s;
}

// ---------------------------------------------------------------------------
// Operations. "req" = request registers, "rep" = reply registers (mr[0] is
// always the request id, reply mr[1] always the Result).

enum class Op : std::uint32_t {
    // req: mr1 = permits (low 32) | mode (high 32), mr2..5 = name,
    //      flags: create_persist
    // rep: mr2 = handle (the creator's session has it open)
    create = 1,
    // req: mr2..5 = name.  rep: mr2 = handle
    open = 2,
    // req: mr1 = handle, mr2 = count (>= 1), mr3 = timeout in ns
    //      (0: try, no wait; UINT64_MAX: wait forever)
    // rep: mr2 = fencing token of this grant (strictly increasing per
    //      semaphore), mr3 = permits this session now holds on it
    acquire = 3,
    // req: mr1 = handle, mr2 = count.  rep: mr3 = permits still held
    release = 4,
    // req: mr1 = handle.
    // rep: mr2 = permits (low) | available (high), mr3 = holders (low) |
    //      waiters (high), mr4 = owner uid (low) | gid (high),
    //      mr5 = mode (low) | flags (high: sem_persistent),
    //      mr6 = last fencing token granted
    stat = 5,
    // req: mr1 = handle, mr2 = index (0, 1, ...)
    // rep: mr2 = pid (low) | uid (high), mr3 = count held, mr4 = since
    //      (CLOCK_REALTIME, ns), mr5 = session id; Result::end past the last
    holder = 6,
    // Same as holder, for the queue of waiters in FIFO order (mr3 = count
    // wanted, mr4 = waiting since).
    waiter = 7,
    // req: mr2 = index.  rep: mr2..5 = name, mr6 = permits (low) |
    //      available (high); Result::end past the last semaphore
    list = 8,
    // req: mr2..5 = name. Only the owner or root. Waiters get Result::deleted.
    remove = 9,
    // req: mr1 = handle. Drops the handle; the session must hold no permits
    // on it (else Result::busy).
    close = 10,
    // req: -.  rep: mr2 = sessions, mr3 = semaphores, mr4 = waiting
    //      requests, mr5 = daemon pid, mr6 = daemon start (CLOCK_REALTIME, s)
    status = 11,
    // req: mr2 = cursor: the session with the smallest id above it (0 for
    //      the first; then the id of the last one received). Ids are
    //      never 0; a session leaving mid-listing shifts nothing.
    // rep: mr2 = session id (low) | pid (high), mr3 = uid (low) | gid (high),
    //      mr4 = permits held, all semaphores (low) | pending acquires (high),
    //      mr5..6 = command name (/proc/PID/comm at connect, 16 bytes,
    //      NUL-padded); Result::end past the last
    sessions = 12,
    // req: mr2 = session id. Root only (else permission_denied); not_found
    // if no such session; invalid_argument for the caller's own session.
    // Ends that session as if its client had died: every permit given back,
    // its waits cancelled, its socket closed (the client sees ECONNRESET).
    // rep: mr2 = permits given back, mr3 = waits cancelled
    release_session = 13,
    // req: -. Root only. ipcd re-reads its configuration file (as SIGHUP).
    // rep: ok, or bad_config (the file is invalid: ipcd's log says where
    //      and why, and the running configuration stays); mr2 = declared
    //      semaphores after the reload
    reload = 14,
    // req: mr2 = uid (UINT64_MAX: the caller's).
    // rep: mr2 = sessions (low) | limit (high), mr3 = semaphores owned
    //      (low) | limit (high), mr4 = pending acquires (low) | limit
    //      (high), mr5 = uid (low) | may create semaphores (high: 0 or 1),
    //      mr6 = open handles per session limit. A limit of 0: no limit
    //      (root, who is exempt).
    usage = 15,
};

inline constexpr unsigned reply_flag = 0x800;      // tag flag set on every reply
inline constexpr unsigned create_persist = 0x001;  // Op::create: survive restarts
inline constexpr std::uint32_t sem_persistent = 0x1;  // Op::stat flags
inline constexpr std::uint32_t sem_declared = 0x2;    // from the configuration file
inline constexpr std::size_t comm_max = 16;           // Op::sessions command name

inline constexpr std::uint64_t wait_forever = UINT64_MAX;

enum class Result : std::uint32_t {
    ok = 0,
    not_found = 1,          // no semaphore of that name
    exists = 2,             // create: the name is taken
    permission_denied = 3,  // the mode bits / owner do not allow it
    invalid_argument = 4,   // bad name, count 0, permits 0, mode > 0777, ...
    would_block = 5,        // try-acquire (timeout 0) could not be granted now
    timed_out = 6,          // the timeout passed before a grant
    over_release = 7,       // release of more than the session holds
    deleted = 8,            // the semaphore was deleted while we waited
    stopping = 9,           // the daemon is shutting down
    limit = 10,             // a per-user limit (sessions, semaphores, waits)
    bad_handle = 11,        // handle not open in this session
    end = 12,               // holder/waiter/list: index past the last entry
    unknown_op = 13,        // label is not an Op
    busy = 14,              // close of a handle with permits held
    too_many = 15,          // count exceeds the semaphore's permits
    bad_config = 16,        // reload: the configuration file is invalid
    declared = 17,          // remove: the semaphore is declared in the configuration
};

// A short, user-facing description for each Result.
constexpr const char* describe(Result r) noexcept {
    switch (r) {
        case Result::ok: return "ok";
        case Result::not_found: return "no such semaphore";
        case Result::exists: return "a semaphore of that name exists";
        case Result::permission_denied: return "permission denied";
        case Result::invalid_argument: return "invalid argument";
        case Result::would_block: return "no permits available now";
        case Result::timed_out: return "timed out waiting for permits";
        case Result::over_release: return "release of more permits than this session holds";
        case Result::deleted: return "the semaphore was deleted while waiting";
        case Result::stopping: return "the daemon is stopping";
        case Result::limit: return "a per-user limit of the daemon was reached";
        case Result::bad_handle: return "the semaphore is not open in this session";
        case Result::end: return "no more entries";
        case Result::unknown_op: return "unknown operation";
        case Result::busy: return "permits are still held";
        case Result::too_many: return "more permits requested than the semaphore has";
        case Result::bad_config: return "ipcd's configuration file is invalid (its log says where and why)";
        case Result::declared:
            return "the semaphore is declared in ipcd's configuration file (remove its [[semaphore]] entry and "
                   "reload to make it removable)";
    }
    return "unknown result";
}

constexpr std::uint64_t pack(std::uint32_t low, std::uint32_t high) noexcept {
    return std::uint64_t{low} | (std::uint64_t{high} << 32);
}
constexpr std::uint32_t low(std::uint64_t w) noexcept { return static_cast<std::uint32_t>(w); }
constexpr std::uint32_t high(std::uint64_t w) noexcept { return static_cast<std::uint32_t>(w >> 32); }

// A request message for `op` with request id `id`.
inline Message request(Op op, std::uint64_t id, unsigned flags = 0) noexcept {
    Message m;
    m.tag = Message::make_tag(static_cast<std::uint32_t>(op), message_registers, flags);
    m.mr[0] = id;
    return m;
}

// A reply to `req` carrying `r`.
inline Message reply(const Message& req, Result r) noexcept {
    Message m;
    m.tag = Message::make_tag(req.label(), message_registers, reply_flag);
    m.mr[0] = req.mr[0];
    m.mr[1] = static_cast<std::uint64_t>(r);
    return m;
}

}  // namespace ipc::proto
