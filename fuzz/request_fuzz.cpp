// fuzz/request_fuzz.cpp - ipcd's request decoding and dispatch, fuzzed.
//
// The input is a script run against a real ipcd::SemaphoreTable: a few
// sessions (root and non-root peers with groups), then steps that add and
// remove sessions, hand the table requests (64-byte messages, biased so that
// most are well-formed requests on small handles and counts, some taken
// verbatim from the input), advance time and expire, and stop. Beside the
// table runs a small reference model built only from the replies the table
// gives; after every step the table is inspected through its public API
// alone (Op::status, list, stat, holder and waiter from a root observer
// session that joins for the check and leaves again) and compared with it.
// A broken promise aborts (libFuzzer reports it as a crash).
//
// Promises checked (daemon/semaphore_table.hpp, include/ipc/protocol.hpp):
//   - every request gets exactly one reply, now or (an acquire that waits)
//     later; a reply carries reply_flag, the request's label and its id in
//     mr0, and a Result that exists; nobody gets a reply to a request it did
//     not make, and a session that left gets nothing;
//   - a waiting acquire is answered by a grant, timed_out once its deadline
//     passed and expire() ran, deleted, or stopping (stop() answers every
//     waiter; afterwards nothing waits);
//   - available <= permits, and available is max(0, permits - held) (held
//     may exceed permits after declare() lowered them, and then only until
//     releases); a grant never takes held above permits; every holder's
//     count is what its grants and releases say; waiters are the pending
//     acquires in arrival order, none wants more than the permits, and the
//     head of a non-empty queue does not fit;
//   - fencing tokens strictly increase per semaphore;
//   - access (mode bits, owner, root; judged when a request is made), the
//     create policy, declared
//     semaphores and the per-user limits decide ok and permission_denied /
//     declared / limit as documented; Op::sessions and Op::usage report
//     what the model counts;
//   - a departure (remove_session or Op::release_session) gives back exactly
//     the permits, waits and handles it had; declare() creates, adopts,
//     changes, undeclares and refuses exactly the names it should.
//
// Script format (front to back; bytes past the end read as 0):
//   byte 0       bit 0: small limits (2 sessions and 2 semaphores per user,
//                3 waits per user, 3 handles per session)
//   byte 1       initial sessions, 1 + b % max_sessions, each one peer byte
//   steps, each a kind byte (% 10):
//     0..3  request:  slot, label, ctl, a, b, c   (see make_request)
//     4     raw:      slot, then 64 bytes used verbatim as the message
//     5     add a session: peer byte
//     6     remove a session: slot byte
//     7     time: byte t; t == 0xFF: stop(); else advance by step_ns[t % 8]
//           and expire()
//     8     declare(): byte n, then n % 5 entries [name, permits, owner, mode]
//           (owner byte: uid uids[o & 3], gid gids[(o >> 2) & 3])
//     9     configure: bytes d, u, p: default limits limit_sets[d % 4], an
//           override for uid uids[u & 3] (bit 2: sessions 1, bit 3:
//           semaphores 1, bit 4: waits 1), create policy (bit 0: anyone,
//           bit 1: uid 1000, bit 2: gid 2000, bit 3: gid 1000)
//   peer byte p: uid uids[p & 3], gid gids[(p >> 2) & 3], supplementary
//   groups: bit 4 -> 1000, bit 5 -> 1001, bit 6 -> 2000
// At the end: stop() (every waiter answered), then every session leaves.
// REQUEST_FUZZ_TRACE=1 prints every reply as the script runs.
#include <algorithm>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/message.hpp"
#include "ipc/protocol.hpp"
#include "semaphore_table.hpp"

namespace {

using ipc::Message;
using ipc::proto::Op;
using ipc::proto::Result;
using ipcd::Now;
using ipcd::Outbox;
using ipcd::Peer;
using ipcd::SemaphoreTable;
using ipcd::SessionId;
namespace proto = ipc::proto;

constexpr std::size_t max_sessions = 6;
constexpr std::size_t max_steps = 64;
constexpr SessionId observer_id = 0xFFFF0000u;
constexpr std::int64_t no_deadline = INT64_MAX;

[[noreturn, gnu::format(printf, 1, 2)]] void violation(const char* fmt, ...) {
    std::va_list ap;
    va_start(ap, fmt);
    std::fputs("request_fuzz: invariant broken: ", stderr);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
    std::abort();
}

#define CHECK(cond, ...)            \
    do {                            \
        if (!(cond)) [[unlikely]]   \
            violation(__VA_ARGS__); \
    } while (0)

// Reads the script front to back; past the end every byte is 0.
class Reader {
public:
    Reader(const std::uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}
    bool done() const noexcept { return p_ >= end_; }
    std::uint8_t byte() noexcept { return p_ < end_ ? *p_++ : 0; }
    void bytes(void* out, std::size_t n) noexcept {
        auto* o = static_cast<std::uint8_t*>(out);
        for (std::size_t i = 0; i < n; ++i) o[i] = byte();
    }

private:
    const std::uint8_t* p_;
    const std::uint8_t* end_;
};

// --- Value tables: small, meaningful values most of the time -----------------

constexpr uid_t uids[] = {0, 1000, 1001, 1002};
constexpr gid_t gids[] = {0, 1000, 1001, 2000};

Peer make_peer(std::uint8_t p, pid_t pid) {
    Peer peer;
    peer.pid = pid;
    peer.uid = uids[p & 3];
    peer.gid = gids[(p >> 2) & 3];
    if (p & 0x10) peer.groups.push_back(1000);
    if (p & 0x20) peer.groups.push_back(1001);
    if (p & 0x40) peer.groups.push_back(2000);
    peer.comm = "fuzz";
    return peer;
}

// Valid names, then names the daemon must refuse.
std::string_view name_for(std::uint8_t sel) {
    // clang-format off
    static constexpr std::string_view names[] = {
        "a", "b", "c", "db-writers", "x.y_z-9", "abcdefghijklmnopqrstuvwxyz012345",  // valid
        "", ".hidden", "bad name", std::string_view("a\0b", 3), "caf\xc3\xa9", "a/b",  // invalid
    };
    // clang-format on
    return names[sel % std::size(names)];
}

// The name as 32 raw bytes in mr2..5.
void put_name(Message& m, std::uint8_t sel) {
    const std::string_view n = name_for(sel);
    char buf[proto::name_max] = {};
    std::memcpy(buf, n.data(), std::min(n.size(), sizeof buf));
    std::memcpy(&m.mr[2], buf, sizeof buf);
}

std::uint64_t handle_for(std::uint8_t a) {
    if (a >= 0xF8) {
        static constexpr std::uint64_t odd[] = {0, UINT64_MAX, (1ull << 32) | 1, 1ull << 63};
        return odd[a & 3];
    }
    return a % 6;  // 0 is never a handle; 1..5 are the first ones a session gets
}

std::uint64_t count_for(std::uint8_t b) {
    if (b >= 0xF8) {
        static constexpr std::uint64_t odd[] = {UINT32_MAX, 1ull << 32, (1ull << 32) | 1, UINT64_MAX, 0x80000000u};
        return odd[b % 5];
    }
    return b % 5;
}

std::uint32_t permits_for(std::uint8_t b) {
    if (b >= 0xF8) return (b & 1) ? UINT32_MAX : 0x80000000u;
    return b % 7;  // 0 is invalid
}

std::uint32_t mode_for(std::uint8_t c) {
    static constexpr std::uint32_t modes[] = {0600, 0660, 0666, 0644, 0, 0777, 0606, 01000};
    if (c >= 0xF8) return c << 4;  // mostly > 0777
    return modes[c % 8];
}

std::uint64_t timeout_for(std::uint8_t c) {
    static constexpr std::uint64_t t[] = {
        0, 1, 1000, 1'000'000, 1'000'000'000, proto::wait_forever, INT64_MAX, 1ull << 63,
    };
    return t[c % 8];
}

constexpr ipcd::Limits limit_sets[] = {
    {64, 256, 1024, 4096},  // the defaults
    {2, 2, 3, 3},           // small: every limit is reached quickly
    {1, 1, 1, 2},
    {3, 4, 2, 5},
};

constexpr std::int64_t step_ns[] = {0, 1, 999, 1000, 1'000'000, 1'000'000'000, 60'000'000'000, INT64_MAX / 4};

// --- The reference model -------------------------------------------------------

struct Obj {  // one semaphore, from create to remove
    std::string name;
    std::uint32_t permits;
    uid_t owner;
    gid_t group;
    std::uint32_t mode;
    bool persistent = false;
    bool counted = true;  // against the owner's semaphores_per_user
    bool declared = false;
    std::uint64_t last_token = 0;
    bool alive = true;
};

struct HandleRec {
    std::size_t obj;
    std::uint32_t opens;
};

struct Pending {
    Message req;
    std::size_t obj = SIZE_MAX;  // acquire: the semaphore it waits on
    std::uint32_t count = 0;     // acquire
    std::int64_t deadline = no_deadline;
    bool may_write = false;  // acquire: write access when it was asked
};

struct Sess {
    SessionId id = 0;
    Peer peer;
    bool alive = false;
    std::map<std::uint64_t, HandleRec> handles;
    std::map<std::uint64_t, Pending> pending;   // by request id = arrival order
    std::map<std::size_t, std::uint32_t> held;  // by obj, counts > 0 only
};

class Script {
public:
    explicit Script(bool small_limits) : limits_(small_limits ? limit_sets[1] : limit_sets[0]), table_(limits_) {
        now_.mono_ns = 1'000'000'000;
        now_.real_ns = 1'700'000'000'000'000'000;
        table_.set_daemon_info(4242, 1'700'000'000);
    }

    void add_session(std::uint8_t peer_byte) {
        std::size_t slot = 0;
        while (slot < sessions_.size() && sessions_[slot].alive) ++slot;
        if (slot == max_sessions) return;
        if (slot == sessions_.size()) sessions_.emplace_back();
        Sess& s = sessions_[slot];
        s = Sess{};
        s.id = next_session_++;
        s.peer = make_peer(peer_byte, static_cast<pid_t>(100 + s.id));
        const std::size_t same_uid = static_cast<std::size_t>(std::count_if(
            sessions_.begin(), sessions_.end(), [&](const Sess& o) { return o.alive && o.peer.uid == s.peer.uid; }));
        const Result r = table_.add_session(s.id, s.peer);
        if (s.peer.uid != 0 && same_uid >= lim(s.peer.uid).sessions_per_user) {
            CHECK(r == Result::limit, "add_session: uid %u has %zu sessions (limit %u) but got %u", s.peer.uid,
                  same_uid, lim(s.peer.uid).sessions_per_user, static_cast<unsigned>(r));
            return;
        }
        CHECK(r == Result::ok, "add_session: uid %u refused with %u", s.peer.uid, static_cast<unsigned>(r));
        s.alive = true;
    }

    void remove_session(std::uint8_t slot_byte) {
        if (sessions_.empty()) return;
        Sess& s = sessions_[slot_byte % sessions_.size()];
        Outbox out;
        const ipcd::Departure d = table_.remove_session(s.id, now_, out);
        if (!s.alive) {
            CHECK(out.empty() && d.handles == 0, "remove_session of a departed session did something");
            return;
        }
        std::uint64_t permits = 0;
        std::uint32_t held_sems = 0;
        for (const auto& [obj, n] : s.held) {
            permits += n;
            ++held_sems;
        }
        CHECK(d.permits_released == permits && d.semaphores_held == held_sems,
              "departure of session %u gave back %llu permits on %u semaphores, it held %llu on %u", s.id,
              static_cast<unsigned long long>(d.permits_released), d.semaphores_held,
              static_cast<unsigned long long>(permits), held_sems);
        CHECK(d.waits_cancelled == s.pending.size(), "departure of session %u cancelled %u waits, it had %zu", s.id,
              d.waits_cancelled, s.pending.size());
        CHECK(d.handles == s.handles.size(), "departure of session %u closed %u handles, it had %zu", s.id, d.handles,
              s.handles.size());
        forget(s);
        deliver(out);
        after_step();
    }

    void request(std::uint8_t slot_byte, const Message& m) {
        if (sessions_.empty()) return;
        Sess& s = sessions_[slot_byte % sessions_.size()];
        Message req = m;
        req.mr[0] = next_request_++;  // unique, so every reply can be matched
        Outbox out;
        if (!s.alive) {
            table_.handle(s.id, req, now_, out);
            CHECK(out.empty(), "a departed session's request was answered");
            return;
        }
        // What the model expects of an acquire, judged before the table runs.
        Pending p;
        p.req = req;
        bool grantable = false;
        const bool is_acquire =
            req.valid() && req.flags() == 0 && req.label() == static_cast<std::uint32_t>(Op::acquire);
        if (is_acquire) {
            auto h = s.handles.find(req.mr[1]);
            if (h != s.handles.end() && objs_[h->second.obj].alive) {
                p.obj = h->second.obj;
                const Obj& o = objs_[p.obj];
                p.may_write = allowed(o, s.peer, 2);
                if (req.mr[2] >= 1 && req.mr[2] <= o.permits) {
                    p.count = static_cast<std::uint32_t>(req.mr[2]);
                    grantable = waiters_on(p.obj).empty() && held_on(p.obj) + p.count <= o.permits;
                }
                const std::uint64_t t = req.mr[3];
                p.deadline = t == proto::wait_forever ? no_deadline
                             : t >= static_cast<std::uint64_t>(INT64_MAX - now_.mono_ns)
                                 ? no_deadline
                                 : now_.mono_ns + static_cast<std::int64_t>(t);
            }
        }
        pre_ = Pre{grantable};
        s.pending.emplace(req.mr[0], p);
        table_.handle(s.id, req, now_, out);
        // Op::release_session: the table ends the target session itself.
        for (SessionId k : table_.take_kicked()) {
            CHECK(req.label() == static_cast<std::uint32_t>(Op::release_session) && req.mr[2] == k && s.peer.uid == 0,
                  "session %u ended by a request that is not root's release_session of it", k);
            Sess* t = by_id(k);
            CHECK(t && t->alive, "release_session ended session %u, which is not there", k);
            std::uint64_t permits = 0;
            for (const auto& [obj, n] : t->held) permits += n;
            kicked_ = Kicked{k, permits, t->pending.size()};
            forget(*t);
        }
        // The request's own reply is in `out` unless it waits.
        const bool answered_now = std::any_of(out.begin(), out.end(), [&](const ipcd::Answer& a) {
            return a.session == s.id && a.reply.mr[0] == req.mr[0];
        });
        deliver(out);
        if (!answered_now) {
            CHECK(is_acquire && p.obj != SIZE_MAX && p.count != 0 && req.mr[3] != 0,
                  "request label %u (flags %#x, mr1 %#llx mr2 %#llx mr3 %#llx) got no reply", req.label(), req.flags(),
                  static_cast<unsigned long long>(req.mr[1]), static_cast<unsigned long long>(req.mr[2]),
                  static_cast<unsigned long long>(req.mr[3]));
            CHECK(!grantable, "an acquire of %u that fits waits instead", p.count);
            CHECK(!table_.stopping(), "an acquire waits after stop()");
        }
        after_step();
    }

    void advance(std::uint8_t t) {
        Outbox out;
        if (t == 0xFF) {
            table_.stop(out);
            deliver(out);
            for (const Sess& s : sessions_)
                CHECK(s.pending.empty(), "stop() left a request of session %u unanswered", s.id);
            CHECK(table_.waiting_count() == 0 && !table_.next_deadline(), "stop() left waiters in the table");
            after_step();
            return;
        }
        const std::int64_t d = step_ns[t % std::size(step_ns)];
        // CLOCK_MONOTONIC stays below INT64_MAX (the table's "no deadline").
        now_.mono_ns = now_.mono_ns > INT64_MAX - 1 - d ? INT64_MAX - 1 : now_.mono_ns + d;
        now_.real_ns += d % 1'000'000'000'000;
        table_.expire(now_, out);
        deliver(out);
        for (const Sess& s : sessions_)
            for (const auto& [id, p] : s.pending)
                CHECK(p.deadline > now_.mono_ns, "expire() left request %llu past its deadline %lld (now %lld)",
                      static_cast<unsigned long long>(id), static_cast<long long>(p.deadline),
                      static_cast<long long>(now_.mono_ns));
        if (auto nd = table_.next_deadline())
            CHECK(*nd > now_.mono_ns, "next_deadline() is in the past after expire()");
        after_step();
    }

    void declare(Reader& in) {
        std::vector<ipcd::Declared> decls(in.byte() % 5);
        for (ipcd::Declared& d : decls) {
            const std::uint8_t nb = in.byte(), pb = in.byte(), ob = in.byte(), mb = in.byte();
            d = ipcd::Declared{std::string(name_for(nb)), permits_for(pb), uids[ob & 3], gids[(ob >> 2) & 3],
                               mode_for(mb)};
        }
        // The model first, as the header describes declare().
        ipcd::DeclareReport want;
        std::set<std::string> wanted;
        for (const ipcd::Declared& d : decls) {
            if (!proto::valid_name(d.name) || d.permits == 0 || d.mode > 0777 || wanted.count(d.name) != 0) {
                want.refused.push_back(d.name);
                if (proto::valid_name(d.name)) wanted.insert(d.name);
                continue;
            }
            wanted.insert(d.name);
            auto it = by_name_.find(d.name);
            if (it == by_name_.end()) {
                objs_.push_back(Obj{d.name, d.permits, d.owner, d.group, d.mode});
                objs_.back().persistent = true;
                objs_.back().counted = false;
                objs_.back().declared = true;
                by_name_[d.name] = objs_.size() - 1;
                want.created.push_back(d.name);
                continue;
            }
            Obj& o = objs_[it->second];
            const bool adopt = !o.declared;
            const bool differs = o.permits != d.permits || o.owner != d.owner || o.group != d.group || o.mode != d.mode;
            if (adopt) {
                o.counted = false;
                o.declared = true;
                o.persistent = true;
                want.adopted.push_back(d.name);
            } else if (differs) {
                want.changed.push_back(d.name);
            }
            o.permits = d.permits;
            o.owner = d.owner;
            o.group = d.group;
            o.mode = d.mode;
        }
        for (const auto& [name, obj] : by_name_) {
            if (!objs_[obj].declared || wanted.count(name) != 0) continue;
            objs_[obj].declared = false;
            want.undeclared.push_back(name);
        }
        if (trace_)
            for (const ipcd::Declared& d : decls)
                std::fprintf(stderr, "declare '%s' permits %u owner %u group %u mode %o\n", d.name.c_str(), d.permits,
                             d.owner, d.group, d.mode);
        Outbox out;
        const ipcd::DeclareReport got = table_.declare(decls, now_, out);
        CHECK(got.created == want.created && got.changed == want.changed && got.adopted == want.adopted &&
                  got.undeclared == want.undeclared && got.refused == want.refused,
              "declare() reports %zu created %zu changed %zu adopted %zu undeclared %zu refused; the model %zu %zu %zu "
              "%zu %zu",
              got.created.size(), got.changed.size(), got.adopted.size(), got.undeclared.size(), got.refused.size(),
              want.created.size(), want.changed.size(), want.adopted.size(), want.undeclared.size(),
              want.refused.size());
        deliver(out);
        after_step();
    }

    void configure(std::uint8_t d, std::uint8_t u, std::uint8_t p) {
        limits_ = limit_sets[d % std::size(limit_sets)];
        per_user_.clear();
        ipcd::UserLimits ul;
        if (u & 4) ul.sessions = 1;
        if (u & 8) ul.semaphores = 1;
        if (u & 16) ul.waits = 1;
        if (u & 0x1C) per_user_[uids[u & 3]] = ul;
        policy_ = ipcd::CreatePolicy{};
        policy_.anyone = (p & 1) != 0;
        if (p & 2) policy_.users.push_back(1000);
        if (p & 4) policy_.groups.push_back(2000);
        if (p & 8) policy_.groups.push_back(1000);
        table_.set_limits(limits_, per_user_);
        table_.set_create_policy(policy_);
        for (uid_t uid : uids) {
            const ipcd::Limits a = table_.limits_for(uid), b = lim(uid);
            CHECK(a.sessions_per_user == b.sessions_per_user && a.semaphores_per_user == b.semaphores_per_user &&
                      a.waits_per_user == b.waits_per_user && a.handles_per_session == b.handles_per_session,
                  "limits_for(%u) is not the defaults with its overrides", uid);
        }
        after_step();
    }

    void finish() {
        advance(0xFF);
        for (std::size_t i = 0; i < sessions_.size(); ++i) remove_session(static_cast<std::uint8_t>(i));
        CHECK(table_.session_count() == 0, "sessions remain after every one left");
    }

private:
    struct Pre {
        bool grantable = false;
    };

    static std::uint32_t result_of(const Message& rep) { return static_cast<std::uint32_t>(rep.mr[1]); }

    std::uint64_t held_on(std::size_t obj) const {
        std::uint64_t held = 0;
        for (const Sess& s : sessions_)
            if (auto it = s.held.find(obj); it != s.held.end()) held += it->second;
        return held;
    }
    // max(0, permits - held): held exceeds permits after they were lowered.
    std::uint32_t available(std::size_t obj) const {
        const std::uint64_t held = held_on(obj);
        return held >= objs_[obj].permits ? 0 : static_cast<std::uint32_t>(objs_[obj].permits - held);
    }

    ipcd::Limits lim(uid_t uid) const {
        ipcd::Limits l = limits_;
        if (auto it = per_user_.find(uid); it != per_user_.end()) {
            if (it->second.sessions) l.sessions_per_user = *it->second.sessions;
            if (it->second.semaphores) l.semaphores_per_user = *it->second.semaphores;
            if (it->second.waits) l.waits_per_user = *it->second.waits;
        }
        return l;
    }
    bool may_create(const Peer& peer) const {
        if (peer.uid == 0 || policy_.anyone) return true;
        if (std::find(policy_.users.begin(), policy_.users.end(), peer.uid) != policy_.users.end()) return true;
        for (gid_t g : policy_.groups)
            if (g == peer.gid || std::find(peer.groups.begin(), peer.groups.end(), g) != peer.groups.end()) return true;
        return false;
    }
    std::size_t owned_by(uid_t uid) const {
        return static_cast<std::size_t>(std::count_if(
            objs_.begin(), objs_.end(), [&](const Obj& o) { return o.alive && o.counted && o.owner == uid; }));
    }
    std::size_t waits_of(uid_t uid) const {
        std::size_t n = 0;
        for (const Sess& s : sessions_)
            if (s.alive && s.peer.uid == uid) n += s.pending.size();
        return n;
    }

    // (request id, session, count) of the acquires waiting on obj, in arrival order.
    struct WaitView {
        std::uint64_t req;
        SessionId session;
        std::uint32_t count;
    };
    std::vector<WaitView> waiters_on(std::size_t obj) const {
        std::vector<WaitView> v;
        for (const Sess& s : sessions_)
            for (const auto& [id, p] : s.pending)
                if (p.obj == obj && s.alive) v.push_back({id, s.id, p.count});
        std::sort(v.begin(), v.end(), [](const WaitView& x, const WaitView& y) { return x.req < y.req; });
        return v;
    }

    std::size_t pending_total() const {
        std::size_t n = 0;
        for (const Sess& s : sessions_) n += s.pending.size();
        return n;
    }
    std::size_t alive_sessions() const {
        return static_cast<std::size_t>(
            std::count_if(sessions_.begin(), sessions_.end(), [](const Sess& s) { return s.alive; }));
    }
    std::size_t alive_objs() const {
        return static_cast<std::size_t>(
            std::count_if(objs_.begin(), objs_.end(), [](const Obj& o) { return o.alive; }));
    }

    static bool allowed(const Obj& o, const Peer& peer, unsigned want) {
        if (peer.uid == 0) return true;
        unsigned bits;
        if (peer.uid == o.owner)
            bits = (o.mode >> 6) & 7u;
        else if (peer.gid == o.group || std::find(peer.groups.begin(), peer.groups.end(), o.group) != peer.groups.end())
            bits = (o.mode >> 3) & 7u;
        else
            bits = o.mode & 7u;
        return (bits & want) == want;
    }

    Sess* by_id(SessionId id) {
        for (Sess& s : sessions_)
            if (s.id == id) return &s;
        return nullptr;
    }

    void forget(Sess& s) {
        s.alive = false;
        s.pending.clear();
        s.held.clear();
        s.handles.clear();
    }

    // Matches each reply with its request and updates the model.
    void deliver(const Outbox& out) {
        for (const ipcd::Answer& a : out) {
            Sess* s = by_id(a.session);
            CHECK(s && s->alive, "reply to session %u, which is not there", a.session);
            const Message& rep = a.reply;
            auto pit = s->pending.find(rep.mr[0]);
            CHECK(pit != s->pending.end(), "session %u got a reply to request %llu it is not waiting for", a.session,
                  static_cast<unsigned long long>(rep.mr[0]));
            const Pending p = pit->second;
            s->pending.erase(pit);
            CHECK(rep.flags() & proto::reply_flag, "reply without reply_flag");
            CHECK(rep.label() == p.req.label(), "reply label %u to a request of label %u", rep.label(), p.req.label());
            CHECK(rep.valid(), "malformed reply tag %#llx", static_cast<unsigned long long>(rep.tag));
            const std::uint32_t r = result_of(rep);
            if (trace_)
                std::fprintf(stderr, "  session %u request %llu: op %u -> %s\n", a.session,
                             static_cast<unsigned long long>(rep.mr[0]), rep.label(),
                             proto::describe(static_cast<Result>(r)));
            CHECK(std::string_view(proto::describe(static_cast<Result>(r))) != "unknown result",
                  "reply Result %u does not exist", r);
            apply(*s, p, rep, static_cast<Result>(r));
        }
        // Semaphores that went away took their waiters' requests with them.
        for (const Sess& s : sessions_)
            for (const auto& [id, p] : s.pending)
                CHECK(p.obj == SIZE_MAX || objs_[p.obj].alive, "request %llu still waits on a removed semaphore",
                      static_cast<unsigned long long>(id));
    }

    void apply(Sess& s, const Pending& p, const Message& rep, Result r) {
        const Message& req = p.req;
        if (!req.valid() ||
            (req.flags() & ~(req.label() == static_cast<std::uint32_t>(Op::create) ? proto::create_persist : 0u)) !=
                0) {
            CHECK(r == Result::invalid_argument, "malformed request (tag %#llx) answered %u",
                  static_cast<unsigned long long>(req.tag), static_cast<unsigned>(r));
            return;
        }
        const auto handle_obj = [&](std::uint64_t h) -> const HandleRec* {
            auto it = s.handles.find(h);
            return it == s.handles.end() ? nullptr : &it->second;
        };
        switch (static_cast<Op>(req.label())) {
            case Op::create: {
                const auto name = proto::unpack_name(req, 2);
                if (r == Result::ok) {
                    CHECK(name && !by_name_.count(*name), "create of a taken or invalid name succeeded");
                    CHECK(may_create(s.peer), "create succeeded against the create policy");
                    CHECK(!s.handles.count(rep.mr[2]) && rep.mr[2] != 0, "create returned handle %llu, already in use",
                          static_cast<unsigned long long>(rep.mr[2]));
                    objs_.push_back(Obj{*name, proto::low(req.mr[1]), s.peer.uid, s.peer.gid, proto::high(req.mr[1])});
                    objs_.back().persistent = (req.flags() & proto::create_persist) != 0;
                    by_name_[*name] = objs_.size() - 1;
                    s.handles[rep.mr[2]] = HandleRec{objs_.size() - 1, 1};
                } else if (r == Result::exists) {
                    CHECK(name && by_name_.count(*name), "create answered exists for a free name");
                } else if (r == Result::limit) {
                    CHECK((s.peer.uid != 0 && owned_by(s.peer.uid) >= lim(s.peer.uid).semaphores_per_user) ||
                              s.handles.size() >= limits_.handles_per_session,
                          "create refused with limit below every limit");
                } else if (r == Result::permission_denied) {
                    CHECK(!may_create(s.peer), "create refused although the create policy allows it");
                }
                break;
            }
            case Op::open: {
                const auto name = proto::unpack_name(req, 2);
                if (r == Result::ok) {
                    CHECK(name && by_name_.count(*name), "open of a missing name succeeded");
                    const std::size_t obj = by_name_.at(*name);
                    CHECK(allowed(objs_[obj], s.peer, 4) || allowed(objs_[obj], s.peer, 2),
                          "open allowed without access");
                    auto it = std::find_if(s.handles.begin(), s.handles.end(),
                                           [&](const auto& kv) { return kv.second.obj == obj; });
                    if (it != s.handles.end()) {
                        CHECK(it->first == rep.mr[2], "second open of a semaphore returned a new handle");
                        ++it->second.opens;
                    } else {
                        CHECK(!s.handles.count(rep.mr[2]) && rep.mr[2] != 0, "open returned a handle in use");
                        s.handles[rep.mr[2]] = HandleRec{obj, 1};
                    }
                } else if (r == Result::not_found) {
                    CHECK(name && !by_name_.count(*name), "open answered not_found for an existing name");
                } else if (r == Result::permission_denied) {
                    CHECK(name && by_name_.count(*name), "open denied on a missing name");
                    const Obj& o = objs_[by_name_.at(*name)];
                    CHECK(!allowed(o, s.peer, 4) && !allowed(o, s.peer, 2), "open denied despite access");
                }
                break;
            }
            case Op::acquire: {
                const HandleRec* h = handle_obj(req.mr[1]);
                if (r == Result::ok) {
                    CHECK(h && p.obj == h->obj, "acquire granted on a handle that is not open");
                    Obj& o = objs_[p.obj];
                    // Access is judged when the acquire is asked: a waiter
                    // whose access declare() revoked since is still granted
                    // (like a blocked write(2) after chmod).
                    CHECK(o.alive && p.may_write, "acquire granted without write access");
                    CHECK(rep.mr[2] > o.last_token, "fencing token %llu after %llu",
                          static_cast<unsigned long long>(rep.mr[2]), static_cast<unsigned long long>(o.last_token));
                    o.last_token = rep.mr[2];
                    const std::uint32_t held = s.held[p.obj] += p.count;
                    CHECK(rep.mr[3] == held, "acquire says %llu held, the model %u",
                          static_cast<unsigned long long>(rep.mr[3]), held);
                    CHECK(held_on(p.obj) <= o.permits, "a grant took held above permits");
                } else if (r == Result::bad_handle) {
                    CHECK(!h, "acquire: bad_handle for an open handle");
                } else if (r == Result::would_block) {
                    CHECK(req.mr[3] == 0 && !pre_.grantable, "try-acquire refused although it fits");
                } else if (r == Result::permission_denied) {
                    CHECK(h && !allowed(objs_[h->obj], s.peer, 2), "acquire denied despite write access");
                } else if (r == Result::limit) {
                    CHECK(s.peer.uid != 0 && waits_of(s.peer.uid) >= lim(s.peer.uid).waits_per_user,
                          "acquire refused with limit below the waits limit");
                }
                break;
            }
            case Op::release: {
                const HandleRec* h = handle_obj(req.mr[1]);
                if (r == Result::ok) {
                    CHECK(h && objs_[h->obj].alive, "release on a handle that is not open");
                    auto it = s.held.find(h->obj);
                    CHECK(it != s.held.end() && it->second >= req.mr[2], "release of more than held succeeded");
                    it->second -= static_cast<std::uint32_t>(req.mr[2]);
                    CHECK(rep.mr[3] == it->second, "release says %llu left, the model %u",
                          static_cast<unsigned long long>(rep.mr[3]), it->second);
                    if (it->second == 0) s.held.erase(it);
                } else if (r == Result::over_release) {
                    CHECK(h, "over_release on a handle that is not open");
                    auto it = s.held.find(h->obj);
                    CHECK(req.mr[2] > (it == s.held.end() ? 0u : it->second), "over_release within what is held");
                }
                break;
            }
            case Op::close: {
                auto it = s.handles.find(req.mr[1]);
                if (r == Result::ok) {
                    CHECK(it != s.handles.end(), "close of a handle that is not open succeeded");
                    if (it->second.opens == 1 && objs_[it->second.obj].alive) {
                        CHECK(!s.held.count(it->second.obj), "last close while holding permits succeeded");
                        for (const auto& [id, q] : s.pending)
                            CHECK(q.obj != it->second.obj, "last close while waiting succeeded");
                    }
                    if (--it->second.opens == 0) s.handles.erase(it);
                } else if (r == Result::bad_handle) {
                    CHECK(it == s.handles.end(), "close: bad_handle for an open handle");
                }
                break;
            }
            case Op::remove: {
                const auto name = proto::unpack_name(req, 2);
                if (r == Result::ok) {
                    CHECK(name && by_name_.count(*name), "remove of a missing name succeeded");
                    const std::size_t obj = by_name_.at(*name);
                    CHECK(s.peer.uid == 0 || s.peer.uid == objs_[obj].owner, "remove by neither owner nor root");
                    CHECK(!objs_[obj].declared, "a declared semaphore was removed");
                    objs_[obj].alive = false;
                    by_name_.erase(*name);
                    for (Sess& o : sessions_) o.held.erase(obj);
                } else if (r == Result::not_found) {
                    CHECK(name && !by_name_.count(*name), "remove answered not_found for an existing name");
                } else if (r == Result::declared) {
                    CHECK(name && by_name_.count(*name) && objs_[by_name_.at(*name)].declared,
                          "remove answered declared for a semaphore that is not");
                }
                break;
            }
            case Op::stat:
                if (r == Result::ok) {
                    const HandleRec* h = handle_obj(req.mr[1]);
                    CHECK(h && objs_[h->obj].alive, "stat on a handle that is not open");
                    CHECK(proto::low(rep.mr[2]) == objs_[h->obj].permits, "stat: permits differ");
                    CHECK(proto::high(rep.mr[2]) == available(h->obj), "stat: available %u, the model %u",
                          proto::high(rep.mr[2]), available(h->obj));
                    CHECK(allowed(objs_[h->obj], s.peer, 4), "stat without read access");
                }
                break;
            case Op::release_session:
                if (r == Result::ok) {
                    CHECK(s.peer.uid == 0, "release_session by a non-root peer");
                    CHECK(kicked_ && kicked_->id == req.mr[2], "release_session answered ok but ended nobody");
                    CHECK(rep.mr[2] == kicked_->permits && rep.mr[3] == kicked_->waits,
                          "release_session says %llu permits and %llu waits, the model %llu and %zu",
                          static_cast<unsigned long long>(rep.mr[2]), static_cast<unsigned long long>(rep.mr[3]),
                          static_cast<unsigned long long>(kicked_->permits), kicked_->waits);
                    kicked_.reset();
                } else if (r == Result::not_found) {
                    const Sess* t = req.mr[2] <= UINT32_MAX ? by_id(static_cast<SessionId>(req.mr[2])) : nullptr;
                    CHECK(!t || !t->alive, "release_session: not_found for a live session");
                }
                break;
            case Op::reload:
                CHECK(r == (s.peer.uid == 0 ? Result::unknown_op : Result::permission_denied),
                      "reload reached the table and was answered %u", static_cast<unsigned>(r));
                break;
            default: break;
        }
    }

    // One request from the observer; its reply, checked for shape.
    Message ask(Message req) {
        req.mr[0] = next_request_++;
        Outbox out;
        table_.handle(observer_id, req, now_, out);
        CHECK(out.size() == 1 && out[0].session == observer_id && out[0].reply.mr[0] == req.mr[0] &&
                  out[0].reply.label() == req.label(),
              "observer request label %u: %zu replies, or a reply that does not match", req.label(), out.size());
        return out[0].reply;
    }

    // Compares the table with the model through the public API only.
    void after_step() {
        CHECK(table_.session_count() == alive_sessions(), "table has %zu sessions, the model %zu",
              table_.session_count(), alive_sessions());
        CHECK(table_.semaphore_count() == alive_objs(), "table has %zu semaphores, the model %zu",
              table_.semaphore_count(), alive_objs());
        CHECK(table_.waiting_count() == pending_total(), "table has %zu waiting, the model %zu", table_.waiting_count(),
              pending_total());

        Peer root;
        root.pid = 1;
        root.comm = "observer";
        CHECK(table_.add_session(observer_id, root) == Result::ok, "observer refused");
        Message st = ask(proto::request(Op::status, 0));
        CHECK(result_of(st) == 0 && st.mr[2] == alive_sessions() + 1 && st.mr[3] == alive_objs() &&
                  st.mr[4] == pending_total(),
              "status: %llu sessions, %llu semaphores, %llu waiting; the model %zu, %zu, %zu",
              static_cast<unsigned long long>(st.mr[2]), static_cast<unsigned long long>(st.mr[3]),
              static_cast<unsigned long long>(st.mr[4]), alive_sessions() + 1, alive_objs(), pending_total());

        // Op::sessions: every session in id order (the observer's id is the largest).
        std::vector<const Sess*> live;
        for (const Sess& s : sessions_)
            if (s.alive) live.push_back(&s);
        std::sort(live.begin(), live.end(), [](const Sess* x, const Sess* y) { return x->id < y->id; });
        std::uint64_t cursor = 0;  // the id last listed
        for (std::size_t i = 0; i <= live.size() + 1; ++i) {
            Message q = proto::request(Op::sessions, 0);
            q.mr[2] = cursor;
            const Message r = ask(q);
            cursor = proto::low(r.mr[2]);
            if (i > live.size()) {
                CHECK(result_of(r) == static_cast<std::uint32_t>(Result::end), "sessions lists more than there are");
                break;
            }
            const SessionId id = i == live.size() ? observer_id : live[i]->id;
            CHECK(result_of(r) == 0 && proto::low(r.mr[2]) == id, "sessions entry %zu is not session %u", i, id);
            if (i == live.size()) continue;
            std::uint64_t held = 0;
            for (const auto& [obj, n] : live[i]->held) held += n;
            CHECK(r.mr[3] == proto::pack(live[i]->peer.uid, live[i]->peer.gid) && proto::low(r.mr[4]) == held &&
                      proto::high(r.mr[4]) == live[i]->pending.size(),
                  "sessions: session %u holds %u and waits %u, the model %llu and %zu", id, proto::low(r.mr[4]),
                  proto::high(r.mr[4]), static_cast<unsigned long long>(held), live[i]->pending.size());
        }
        // Op::usage of every uid the script uses.
        for (uid_t uid : uids) {
            Message q = proto::request(Op::usage, 0);
            q.mr[2] = uid;
            const Message r = ask(q);
            std::size_t sessions = uid == 0 ? 1 : 0;  // the observer
            for (const Sess& s : sessions_) sessions += s.alive && s.peer.uid == uid;
            CHECK(result_of(r) == 0 && proto::low(r.mr[2]) == sessions && proto::low(r.mr[3]) == owned_by(uid) &&
                      proto::low(r.mr[4]) == waits_of(uid) && proto::low(r.mr[5]) == uid,
                  "usage of uid %u: %u sessions %u semaphores %u waits; the model %zu %zu %zu", uid,
                  proto::low(r.mr[2]), proto::low(r.mr[3]), proto::low(r.mr[4]), sessions, owned_by(uid),
                  waits_of(uid));
            if (uid != 0) {
                const ipcd::Limits l = lim(uid);
                CHECK(proto::high(r.mr[2]) == l.sessions_per_user && proto::high(r.mr[3]) == l.semaphores_per_user &&
                          proto::high(r.mr[4]) == l.waits_per_user && r.mr[6] == limits_.handles_per_session,
                      "usage of uid %u: limits are not the configured ones", uid);
            }
        }

        std::uint64_t index = 0;
        for (const auto& [name, obj] : by_name_) {
            Message lq = proto::request(Op::list, 0);
            lq.mr[2] = index++;
            Message l = ask(lq);
            CHECK(result_of(l) == 0 && proto::unpack_name(l, 2) == name, "list entry %llu is not '%s'",
                  static_cast<unsigned long long>(index - 1), name.c_str());
            CHECK(proto::low(l.mr[6]) == objs_[obj].permits && proto::high(l.mr[6]) <= proto::low(l.mr[6]),
                  "list '%s': permits %u available %u", name.c_str(), proto::low(l.mr[6]), proto::high(l.mr[6]));
            check_semaphore(name, obj);
        }
        Message lq = proto::request(Op::list, 0);
        lq.mr[2] = index;
        CHECK(result_of(ask(lq)) == static_cast<std::uint32_t>(Result::end), "list goes past the model's semaphores");

        Outbox out;
        table_.remove_session(observer_id, now_, out);
        CHECK(out.empty(), "the observer's departure produced replies");
    }

    void check_semaphore(const std::string& name, std::size_t obj) {
        const Obj& o = objs_[obj];
        Message oq = proto::request(Op::open, 0);
        proto::pack_name(oq, 2, name);
        Message op = ask(oq);
        CHECK(result_of(op) == 0, "observer cannot open '%s'", name.c_str());
        const std::uint64_t h = op.mr[2];

        Message sq = proto::request(Op::stat, 0);
        sq.mr[1] = h;
        Message st = ask(sq);
        const std::uint32_t permits = proto::low(st.mr[2]), avail = proto::high(st.mr[2]);
        const std::vector<WaitView> waiters = waiters_on(obj);
        std::size_t holders = 0;
        for (const Sess& s : sessions_)
            if (s.alive && s.held.count(obj)) ++holders;
        CHECK(result_of(st) == 0 && permits == o.permits && avail <= permits, "stat '%s': permits %u available %u",
              name.c_str(), permits, avail);
        CHECK(avail == available(obj), "'%s': available %u, the model %u", name.c_str(), avail, available(obj));
        CHECK(proto::low(st.mr[3]) == holders && proto::high(st.mr[3]) == waiters.size(),
              "'%s': %u holders %u waiters, the model %zu and %zu", name.c_str(), proto::low(st.mr[3]),
              proto::high(st.mr[3]), holders, waiters.size());
        CHECK(proto::low(st.mr[4]) == o.owner && proto::high(st.mr[4]) == o.group && proto::low(st.mr[5]) == o.mode,
              "'%s': owner, group or mode changed", name.c_str());
        CHECK(proto::high(st.mr[5]) ==
                  ((o.persistent ? proto::sem_persistent : 0u) | (o.declared ? proto::sem_declared : 0u)),
              "'%s': stat flags %#x, the model persistent %d declared %d", name.c_str(), proto::high(st.mr[5]),
              o.persistent, o.declared);
        for (const WaitView& w : waiters)
            CHECK(w.count <= permits, "'%s': a waiter wants %u of %u permits", name.c_str(), w.count, permits);
        CHECK(st.mr[6] == o.last_token, "'%s': last token %llu, the model %llu", name.c_str(),
              static_cast<unsigned long long>(st.mr[6]), static_cast<unsigned long long>(o.last_token));

        std::uint64_t sum = 0;
        for (std::uint64_t i = 0;; ++i) {
            Message hq = proto::request(Op::holder, 0);
            hq.mr[1] = h;
            hq.mr[2] = i;
            Message hr = ask(hq);
            if (result_of(hr) == static_cast<std::uint32_t>(Result::end)) {
                CHECK(i == holders, "'%s': %llu holders listed, the model %zu", name.c_str(),
                      static_cast<unsigned long long>(i), holders);
                break;
            }
            CHECK(result_of(hr) == 0, "holder %llu of '%s' answered %u", static_cast<unsigned long long>(i),
                  name.c_str(), result_of(hr));
            const Sess* s = by_id(static_cast<SessionId>(hr.mr[5]));
            CHECK(s && s->alive && s->held.count(obj) && s->held.at(obj) == hr.mr[3],
                  "'%s': session %llu holds %llu, not what the model says", name.c_str(),
                  static_cast<unsigned long long>(hr.mr[5]), static_cast<unsigned long long>(hr.mr[3]));
            CHECK(proto::high(hr.mr[2]) == s->peer.uid, "holder uid differs");
            sum += hr.mr[3];
        }
        CHECK(avail == (sum >= permits ? 0 : permits - sum), "'%s': %llu held, %u available, %u permits", name.c_str(),
              static_cast<unsigned long long>(sum), avail, permits);

        for (std::uint64_t i = 0;; ++i) {
            Message wq = proto::request(Op::waiter, 0);
            wq.mr[1] = h;
            wq.mr[2] = i;
            Message wr = ask(wq);
            if (result_of(wr) == static_cast<std::uint32_t>(Result::end)) {
                CHECK(i == waiters.size(), "'%s': %llu waiters listed, the model %zu", name.c_str(),
                      static_cast<unsigned long long>(i), waiters.size());
                break;
            }
            CHECK(result_of(wr) == 0 && i < waiters.size() && wr.mr[5] == waiters[i].session &&
                      wr.mr[3] == waiters[i].count,
                  "'%s': waiter %llu is session %llu for %llu, not the model's (FIFO)", name.c_str(),
                  static_cast<unsigned long long>(i), static_cast<unsigned long long>(wr.mr[5]),
                  static_cast<unsigned long long>(wr.mr[3]));
        }
        if (!waiters.empty())
            CHECK(waiters.front().count > avail, "'%s': the head waiter wants %u and %u are available", name.c_str(),
                  waiters.front().count, avail);

        Message cq = proto::request(Op::close, 0);
        cq.mr[1] = h;
        CHECK(result_of(ask(cq)) == 0, "observer cannot close its handle on '%s'", name.c_str());
    }

    ipcd::Limits limits_;
    SemaphoreTable table_;
    Now now_;
    std::vector<Sess> sessions_;
    std::vector<Obj> objs_;
    std::map<std::string, std::size_t> by_name_;
    SessionId next_session_ = 1;
    std::uint64_t next_request_ = 1;
    Pre pre_;
    struct Kicked {
        SessionId id;
        std::uint64_t permits;
        std::size_t waits;
    };
    std::optional<Kicked> kicked_;
    std::map<uid_t, ipcd::UserLimits> per_user_;
    ipcd::CreatePolicy policy_;
    // REQUEST_FUZZ_TRACE=1 in the environment: print every reply (for
    // reading what a crashing input does).
    bool trace_ = std::getenv("REQUEST_FUZZ_TRACE") != nullptr;
};

// A request from six script bytes: label, ctl, a, b, c (and the slot before).
//   label  < 0xF0: Op label % 16 (0 is not an op); else an unknown label
//   ctl    bits 0-1: flags none / create_persist / reply_flag / 1 << (a % 12);
//          bit 6: a reserved tag bit; bit 7: words = 15 (both malformed)
//   a      handle, name, or session slot, by op
//   b      count, permits or index
//   c      timeout or mode
Message make_request(Reader& in, const std::vector<SessionId>& ids) {
    const std::uint8_t lb = in.byte(), ctl = in.byte(), a = in.byte(), b = in.byte(), c = in.byte();
    static constexpr std::uint32_t odd_labels[] = {16, 255, 0x10000, UINT32_MAX};
    const std::uint32_t label = lb < 0xF0 ? lb % 16u : odd_labels[lb & 3];
    unsigned flags = 0;
    switch (ctl & 3) {
        case 1: flags = proto::create_persist; break;
        case 2: flags = proto::reply_flag; break;
        case 3: flags = 1u << (a % 12); break;
        default: break;
    }
    Message m;
    m.tag = Message::make_tag(label, (ctl & 0x80) ? 15 : ipc::message_registers, flags);
    if (ctl & 0x40) m.tag |= 1ull << 20;
    switch (static_cast<Op>(label)) {
        case Op::create:
            m.mr[1] = proto::pack(permits_for(b), mode_for(c));
            put_name(m, a);
            break;
        case Op::open:
        case Op::remove: put_name(m, a); break;
        case Op::acquire:
            m.mr[1] = handle_for(a);
            m.mr[2] = count_for(b);
            m.mr[3] = timeout_for(c);
            break;
        case Op::release:
            m.mr[1] = handle_for(a);
            m.mr[2] = count_for(b);
            break;
        case Op::holder:
        case Op::waiter:
            m.mr[1] = handle_for(a);
            m.mr[2] = b == 0xFF ? UINT64_MAX : b % 6;
            break;
        case Op::stat:
        case Op::close: m.mr[1] = handle_for(a); break;
        case Op::list:
        case Op::sessions: m.mr[2] = b == 0xFF ? UINT64_MAX : b % 10; break;
        case Op::release_session:
            m.mr[2] = a >= 0xF0 ? (a & 1 ? 0 : UINT64_MAX) : ids.empty() ? 1 : ids[a % ids.size()];
            break;
        case Op::usage: {
            static constexpr std::uint64_t who[] = {UINT64_MAX, 0, 1000, 1001, 1002, 1ull << 33};
            m.mr[2] = who[b % 6];
            break;
        }
        default:
            // status, reload and unknown labels ignore their registers.
            m.mr[2] = a;
            m.mr[6] = b;
            break;
    }
    return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Reader in(data, size);
    Script script((in.byte() & 1) != 0);
    const unsigned initial = 1 + in.byte() % max_sessions;
    for (unsigned i = 0; i < initial; ++i) script.add_session(in.byte());
    std::vector<SessionId> ids;
    for (SessionId i = 1; i < 16; ++i) ids.push_back(i);
    for (std::size_t step = 0; step < max_steps && !in.done(); ++step) {
        const std::uint8_t kind = in.byte() % 10;
        switch (kind) {
            case 0:
            case 1:
            case 2:
            case 3: {
                const std::uint8_t slot = in.byte();
                script.request(slot, make_request(in, ids));
                break;
            }
            case 4: {
                const std::uint8_t slot = in.byte();
                Message m;
                in.bytes(&m, sizeof m);
                script.request(slot, m);
                break;
            }
            case 5: script.add_session(in.byte()); break;
            case 6: script.remove_session(in.byte()); break;
            case 7: script.advance(in.byte()); break;
            case 8: script.declare(in); break;
            case 9: {
                const std::uint8_t d = in.byte(), u = in.byte(), p = in.byte();
                script.configure(d, u, p);
                break;
            }
        }
    }
    script.finish();
    return 0;
}
