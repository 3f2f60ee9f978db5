// daemon/semaphore_table.cpp - the semaphore state machine (see the header).
//
// Every operation is a straight line of guards, each answering an error and
// changing nothing, then the commit, then the mutation. Messages come from
// untrusted peers: every register is checked before it is used.
#include "semaphore_table.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <set>

namespace ipcd {

using ipc::proto::Op;
namespace proto = ipc::proto;

namespace {

// A reply for a request that is answered later (the request itself is gone).
Message deferred_reply(Op op, std::uint64_t request_id, Result r) {
    Message m;
    m.tag = Message::make_tag(static_cast<std::uint32_t>(op), ipc::message_registers, proto::reply_flag);
    m.mr[0] = request_id;
    m.mr[1] = static_cast<std::uint64_t>(r);
    return m;
}

Message grant_reply(std::uint64_t request_id, std::uint64_t token, std::uint32_t held) {
    Message m = deferred_reply(Op::acquire, request_id, Result::ok);
    m.mr[2] = token;
    m.mr[3] = held;
    return m;
}

std::int64_t saturating_add(std::int64_t base, std::uint64_t delta) {
    if (delta >= static_cast<std::uint64_t>(INT64_MAX - base)) return INT64_MAX;
    return base + static_cast<std::int64_t>(delta);
}

// The flags a request of each op may carry; anything else is rejected so
// that a future flag is never silently ignored by an older daemon.
unsigned allowed_flags(std::uint32_t label) {
    return label == static_cast<std::uint32_t>(Op::create) ? proto::create_persist : 0u;
}

}  // namespace

// ---------------------------------------------------------------------------
// Sessions

Result SemaphoreTable::add_session(SessionId id, const Peer& peer) {
    if (sessions_.count(id) != 0) return Result::invalid_argument;
    auto uit = usage_.find(peer.uid);
    const std::uint32_t have = uit == usage_.end() ? 0 : uit->second.sessions;
    if (limited(peer.uid) && have >= limits_for(peer.uid).sessions_per_user) return Result::limit;
    // commit
    ++usage_[peer.uid].sessions;
    SessionRec rec;
    rec.peer = peer;
    sessions_.emplace(id, std::move(rec));
    return Result::ok;
}

std::uint32_t SemaphoreTable::sessions_of(uid_t uid) const {
    auto it = usage_.find(uid);
    return it == usage_.end() ? 0 : it->second.sessions;
}

Departure SemaphoreTable::remove_session(SessionId id, const Now& now, Outbox& out) {
    auto sit = sessions_.find(id);
    if (sit == sessions_.end()) return {};
    SessionRec& s = sit->second;
    Departure d;
    d.handles = static_cast<std::uint32_t>(s.handles.size());

    // Cancel the waits first, so the permits given back below cannot be
    // granted to the departing session itself.
    std::vector<SemId> touched;
    for (const auto& [handle, rec] : s.handles) {
        auto semit = sems_.find(rec.sem);
        if (semit == sems_.end()) continue;
        Sem& sem = semit->second;
        bool any = false;
        for (auto it = sem.waiters.begin(); it != sem.waiters.end();) {
            auto next = std::next(it);
            if (it->session == id) {
                unlink_waiter(sem, it);
                ++d.waits_cancelled;
                any = true;
            }
            it = next;
        }
        auto h = sem.holders.find(id);
        if (h != sem.holders.end()) {
            sem.held -= h->second.count;
            d.permits_released += h->second.count;
            ++d.semaphores_held;
            sem.holders.erase(h);
            any = true;
        }
        if (any) touched.push_back(sem.id);
    }
    const uid_t uid = s.peer.uid;
    if (auto u = usage_.find(uid); u != usage_.end() && u->second.sessions != 0) --u->second.sessions;
    sessions_.erase(sit);
    forget_if_idle(uid);
    // Then serve whoever the departure unblocked, semaphore by semaphore.
    for (SemId sid : touched) {
        auto semit = sems_.find(sid);
        if (semit != sems_.end()) pump(semit->second, now, out);
    }
    return d;
}

// ---------------------------------------------------------------------------
// Requests

void SemaphoreTable::handle(SessionId id, const Message& req, const Now& now, Outbox& out) {
    auto sit = sessions_.find(id);
    if (sit == sessions_.end()) return;
    SessionRec& s = sit->second;
    std::optional<Message> rep;
    if (!req.valid() || (req.flags() & ~allowed_flags(req.label())) != 0) {
        rep = proto::reply(req, Result::invalid_argument);
    } else {
        switch (static_cast<Op>(req.label())) {
            case Op::create: rep = op_create(s, req); break;
            case Op::open: rep = op_open(s, req); break;
            case Op::acquire: rep = op_acquire(id, s, req, now); break;
            case Op::release: rep = op_release(id, s, req, now, out); break;
            case Op::stat: rep = op_stat(s, req); break;
            case Op::holder: rep = op_holder(s, req, false); break;
            case Op::waiter: rep = op_holder(s, req, true); break;
            case Op::list: rep = op_list(req); break;
            case Op::remove: rep = op_remove(s, req, out); break;
            case Op::close: rep = op_close(id, s, req); break;
            case Op::status: rep = op_status(req); break;
            case Op::sessions: rep = op_sessions(req); break;
            case Op::release_session: rep = op_release_session(id, s, req, now, out); break;
            case Op::usage: rep = op_usage(s, req); break;
            // The daemon answers reload itself (it reads the configuration
            // file); the table cannot, so root learns that this path does not
            // reload, and others are refused as the daemon would refuse them.
            case Op::reload:
                rep = proto::reply(req, s.peer.uid == 0 ? Result::unknown_op : Result::permission_denied);
                break;
            default: rep = proto::reply(req, Result::unknown_op); break;
        }
    }
    if (rep) out.push_back({id, *rep});
}

Result SemaphoreTable::lookup(SessionRec& s, std::uint64_t handle, Sem*& sem) {
    auto h = s.handles.find(handle);
    if (h == s.handles.end()) return Result::bad_handle;
    auto it = sems_.find(h->second.sem);
    if (it == sems_.end()) return Result::not_found;  // removed since it was opened
    sem = &it->second;
    return Result::ok;
}

bool SemaphoreTable::allowed(const Sem& sem, const Peer& peer, unsigned want) {
    if (peer.uid == 0) return true;
    unsigned bits;
    if (peer.uid == sem.owner)
        bits = (sem.mode >> 6) & 7u;
    else if (peer.gid == sem.group || std::find(peer.groups.begin(), peer.groups.end(), sem.group) != peer.groups.end())
        bits = (sem.mode >> 3) & 7u;
    else
        bits = sem.mode & 7u;
    return (bits & want) == want;
}

Result SemaphoreTable::open_handle(SessionRec& s, SemId sem, std::uint64_t& handle) {
    auto it = s.by_sem.find(sem);
    if (it != s.by_sem.end()) {
        HandleRec& rec = s.handles.at(it->second);
        if (rec.opens == UINT32_MAX) return Result::limit;
        ++rec.opens;
        handle = it->second;
        return Result::ok;
    }
    if (s.handles.size() >= limits_.handles_per_session) return Result::limit;
    handle = s.next_handle++;
    s.handles.emplace(handle, HandleRec{sem, 1});
    s.by_sem.emplace(sem, handle);
    return Result::ok;
}

std::optional<Message> SemaphoreTable::op_create(SessionRec& s, const Message& req) {
    auto name = proto::unpack_name(req, 2);
    const std::uint32_t permits = proto::low(req.mr[1]);
    const std::uint32_t mode = proto::high(req.mr[1]);
    if (!name || permits == 0 || mode > 0777) return proto::reply(req, Result::invalid_argument);
    if (!may_create(s.peer)) return proto::reply(req, Result::permission_denied);
    if (by_name_.count(*name) != 0) return proto::reply(req, Result::exists);
    auto uit = usage_.find(s.peer.uid);
    const std::uint32_t owned = uit == usage_.end() ? 0 : uit->second.semaphores;
    if (limited(s.peer.uid) && owned >= limits_for(s.peer.uid).semaphores_per_user)
        return proto::reply(req, Result::limit);
    if (s.handles.size() >= limits_.handles_per_session) return proto::reply(req, Result::limit);
    // commit
    Usage& u = usage_[s.peer.uid];
    const bool persist = (req.flags() & proto::create_persist) != 0;
    Sem& sem = add_sem(*name, permits, s.peer.uid, s.peer.gid, mode, persist, /*counted=*/true);
    const SemId id = sem.id;
    ++u.semaphores;
    if (persist) persistent_dirty_ = true;
    std::uint64_t handle = 0;
    (void)open_handle(s, id, handle);  // cannot fail: the handle limit was checked above
    Message rep = proto::reply(req, Result::ok);
    rep.mr[2] = handle;
    return rep;
}

std::optional<Message> SemaphoreTable::op_open(SessionRec& s, const Message& req) {
    auto name = proto::unpack_name(req, 2);
    if (!name) return proto::reply(req, Result::invalid_argument);
    auto it = by_name_.find(*name);
    if (it == by_name_.end()) return proto::reply(req, Result::not_found);
    const Sem& sem = sems_.at(it->second);
    if (!allowed(sem, s.peer, want_read) && !allowed(sem, s.peer, want_write))
        return proto::reply(req, Result::permission_denied);
    std::uint64_t handle = 0;
    if (Result r = open_handle(s, sem.id, handle); r != Result::ok) return proto::reply(req, r);
    Message rep = proto::reply(req, Result::ok);
    rep.mr[2] = handle;
    return rep;
}

std::optional<Message> SemaphoreTable::op_acquire(SessionId id, SessionRec& s, const Message& req,
                                                  const Now& now) {
    Sem* sem = nullptr;
    if (Result r = lookup(s, req.mr[1], sem); r != Result::ok) return proto::reply(req, r);
    if (!allowed(*sem, s.peer, want_write)) return proto::reply(req, Result::permission_denied);
    const std::uint64_t count = req.mr[2];
    const std::uint64_t timeout = req.mr[3];
    if (count == 0) return proto::reply(req, Result::invalid_argument);
    if (count > sem->permits) return proto::reply(req, Result::too_many);
    const auto n = static_cast<std::uint32_t>(count);
    if (sem->waiters.empty() && fits(*sem, n)) {
        // commit: granted now.
        grant(*sem, id, n, now);
        return grant_reply(req.mr[0], sem->last_token, sem->holders.at(id).count);
    }
    if (timeout == 0) return proto::reply(req, Result::would_block);
    if (stopping_) return proto::reply(req, Result::stopping);
    auto uit = usage_.find(s.peer.uid);
    const std::uint32_t waiting = uit == usage_.end() ? 0 : uit->second.waits;
    if (limited(s.peer.uid) && waiting >= limits_for(s.peer.uid).waits_per_user)
        return proto::reply(req, Result::limit);
    // commit: the request waits; its reply comes from pump(), expire(),
    // erase_sem(), stop() or set_permits().
    Usage& u = usage_[s.peer.uid];
    const WaitId wid = next_wait_++;
    const std::int64_t deadline = timeout == proto::wait_forever ? no_deadline : saturating_add(now.mono_ns, timeout);
    sem->waiters.push_back(Waiter{wid, id, req.mr[0], n, now.real_ns, deadline});
    waits_.emplace(wid, WaitRef{sem->id, std::prev(sem->waiters.end())});
    if (deadline != no_deadline) deadlines_.emplace(deadline, wid);
    ++u.waits;
    ++s.waits;
    return std::nullopt;
}

std::optional<Message> SemaphoreTable::op_release(SessionId id, SessionRec& s, const Message& req, const Now& now,
                                                  Outbox& out) {
    Sem* sem = nullptr;
    if (Result r = lookup(s, req.mr[1], sem); r != Result::ok) return proto::reply(req, r);
    // No access check: a release only gives back what was granted (a grant
    // is the proof), and a holder whose write bit a reload took away must
    // still be able to give its permits back, as close(2) needs no right.
    const std::uint64_t count = req.mr[2];
    if (count == 0) return proto::reply(req, Result::invalid_argument);
    auto h = sem->holders.find(id);
    const std::uint32_t held = h == sem->holders.end() ? 0 : h->second.count;
    if (count > held) return proto::reply(req, Result::over_release);
    // commit
    const auto n = static_cast<std::uint32_t>(count);
    h->second.count -= n;
    const std::uint32_t left = h->second.count;
    if (left == 0) sem->holders.erase(h);
    sem->held -= n;
    Message rep = proto::reply(req, Result::ok);
    rep.mr[3] = left;
    // The releaser's reply goes out before the grants it causes.
    out.push_back({id, rep});
    pump(*sem, now, out);
    return std::nullopt;
}

std::optional<Message> SemaphoreTable::op_stat(SessionRec& s, const Message& req) {
    Sem* sem = nullptr;
    if (Result r = lookup(s, req.mr[1], sem); r != Result::ok) return proto::reply(req, r);
    if (!allowed(*sem, s.peer, want_read)) return proto::reply(req, Result::permission_denied);
    Message rep = proto::reply(req, Result::ok);
    rep.mr[2] = proto::pack(sem->permits, available(*sem));
    rep.mr[3] = proto::pack(static_cast<std::uint32_t>(sem->holders.size()),
                            static_cast<std::uint32_t>(sem->waiters.size()));
    rep.mr[4] = proto::pack(sem->owner, sem->group);
    const std::uint32_t flags =
        (sem->persistent ? proto::sem_persistent : 0u) | (sem->declared ? proto::sem_declared : 0u);
    rep.mr[5] = proto::pack(sem->mode, flags);
    rep.mr[6] = sem->last_token;
    return rep;
}

std::optional<Message> SemaphoreTable::op_holder(SessionRec& s, const Message& req, bool waiters) {
    Sem* sem = nullptr;
    if (Result r = lookup(s, req.mr[1], sem); r != Result::ok) return proto::reply(req, r);
    if (!allowed(*sem, s.peer, want_read)) return proto::reply(req, Result::permission_denied);
    const std::uint64_t index = req.mr[2];
    SessionId who = 0;
    std::uint32_t count = 0;
    std::int64_t since = 0;
    if (!waiters) {
        if (index >= sem->holders.size()) return proto::reply(req, Result::end);
        auto it = std::next(sem->holders.begin(), static_cast<std::ptrdiff_t>(index));
        who = it->first;
        count = it->second.count;
        since = it->second.since_real;
    } else {
        if (index >= sem->waiters.size()) return proto::reply(req, Result::end);
        auto it = std::next(sem->waiters.begin(), static_cast<std::ptrdiff_t>(index));
        who = it->session;
        count = it->count;
        since = it->since_real;
    }
    const Peer& p = sessions_.at(who).peer;
    Message rep = proto::reply(req, Result::ok);
    rep.mr[2] = proto::pack(static_cast<std::uint32_t>(p.pid), p.uid);
    rep.mr[3] = count;
    rep.mr[4] = static_cast<std::uint64_t>(since);
    rep.mr[5] = who;
    return rep;
}

std::optional<Message> SemaphoreTable::op_list(const Message& req) {
    const std::uint64_t index = req.mr[2];
    if (index >= by_name_.size()) return proto::reply(req, Result::end);
    auto it = std::next(by_name_.begin(), static_cast<std::ptrdiff_t>(index));
    const Sem& sem = sems_.at(it->second);
    Message rep = proto::reply(req, Result::ok);
    proto::pack_name(rep, 2, sem.name);
    rep.mr[6] = proto::pack(sem.permits, available(sem));
    return rep;
}

std::optional<Message> SemaphoreTable::op_remove(SessionRec& s, const Message& req, Outbox& out) {
    auto name = proto::unpack_name(req, 2);
    if (!name) return proto::reply(req, Result::invalid_argument);
    auto it = by_name_.find(*name);
    if (it == by_name_.end()) return proto::reply(req, Result::not_found);
    Sem& sem = sems_.at(it->second);
    // Declared first: not even root removes one, and the answer tells the
    // caller where the semaphore comes from.
    if (sem.declared) return proto::reply(req, Result::declared);
    if (s.peer.uid != 0 && s.peer.uid != sem.owner) return proto::reply(req, Result::permission_denied);
    // commit
    erase_sem(sem, out);
    return proto::reply(req, Result::ok);
}

std::optional<Message> SemaphoreTable::op_close(SessionId id, SessionRec& s, const Message& req) {
    auto h = s.handles.find(req.mr[1]);
    if (h == s.handles.end()) return proto::reply(req, Result::bad_handle);
    HandleRec& rec = h->second;
    auto semit = sems_.find(rec.sem);
    if (rec.opens == 1 && semit != sems_.end()) {
        const Sem& sem = semit->second;
        const bool waiting = std::any_of(sem.waiters.begin(), sem.waiters.end(),
                                         [id](const Waiter& w) { return w.session == id; });
        if (sem.holders.count(id) != 0 || waiting) return proto::reply(req, Result::busy);
    }
    // commit
    if (--rec.opens == 0) {
        s.by_sem.erase(rec.sem);
        s.handles.erase(h);
    }
    return proto::reply(req, Result::ok);
}

std::optional<Message> SemaphoreTable::op_status(const Message& req) {
    Message rep = proto::reply(req, Result::ok);
    rep.mr[2] = sessions_.size();
    rep.mr[3] = sems_.size();
    rep.mr[4] = waits_.size();
    rep.mr[5] = static_cast<std::uint64_t>(daemon_pid_);
    rep.mr[6] = static_cast<std::uint64_t>(started_s_);
    return rep;
}

std::optional<Message> SemaphoreTable::op_sessions(const Message& req) {
    // A cursor, not an index: O(log n) per call, and a session that leaves
    // during a listing shifts nothing (session ids are never 0).
    const std::uint64_t after = req.mr[2];
    if (after >= UINT32_MAX) return proto::reply(req, Result::end);
    auto it = sessions_.upper_bound(static_cast<SessionId>(after));
    if (it == sessions_.end()) return proto::reply(req, Result::end);
    const SessionId who = it->first;
    const SessionRec& s = it->second;
    // Permits held, over every semaphore the session has a handle on (a
    // session holds permits only through a handle: close refuses otherwise).
    std::uint64_t held = 0;
    for (const auto& [handle, rec] : s.handles) {
        auto semit = sems_.find(rec.sem);
        if (semit == sems_.end()) continue;
        auto h = semit->second.holders.find(who);
        if (h != semit->second.holders.end()) held += h->second.count;
    }
    Message rep = proto::reply(req, Result::ok);
    rep.mr[2] = proto::pack(who, static_cast<std::uint32_t>(s.peer.pid));
    rep.mr[3] = proto::pack(s.peer.uid, s.peer.gid);
    rep.mr[4] = proto::pack(static_cast<std::uint32_t>(std::min<std::uint64_t>(held, UINT32_MAX)), s.waits);
    char comm[proto::comm_max] = {};
    std::memcpy(comm, s.peer.comm.data(), std::min(s.peer.comm.size(), proto::comm_max));
    static_assert(sizeof comm == 2 * sizeof(std::uint64_t), "the command name fills mr5..6");
    std::memcpy(&rep.mr[5], comm, sizeof comm);
    return rep;
}

std::optional<Message> SemaphoreTable::op_release_session(SessionId id, SessionRec& s, const Message& req,
                                                          const Now& now, Outbox& out) {
    if (s.peer.uid != 0) return proto::reply(req, Result::permission_denied);
    const std::uint64_t target = req.mr[2];
    if (target == id) return proto::reply(req, Result::invalid_argument);
    if (target > UINT32_MAX || sessions_.count(static_cast<SessionId>(target)) == 0)
        return proto::reply(req, Result::not_found);
    // commit: from here the target session is gone. `s` stays valid: only
    // the target's node leaves sessions_.
    const auto victim = static_cast<SessionId>(target);
    Outbox grants;
    const Departure d = remove_session(victim, now, grants);
    kicked_.push_back(victim);
    Message rep = proto::reply(req, Result::ok);
    rep.mr[2] = d.permits_released;
    rep.mr[3] = d.waits_cancelled;
    // The caller's reply goes out before the grants it causes (as release).
    out.push_back({id, rep});
    out.insert(out.end(), grants.begin(), grants.end());
    return std::nullopt;
}

std::optional<Message> SemaphoreTable::op_usage(SessionRec& s, const Message& req) {
    const std::uint64_t asked = req.mr[2];
    if (asked != UINT64_MAX && asked > UINT32_MAX) return proto::reply(req, Result::invalid_argument);
    const uid_t uid = asked == UINT64_MAX ? s.peer.uid : static_cast<uid_t>(asked);
    // may_create: the caller's full credentials when it asks about itself.
    // For another uid the table knows no user database, so it takes that
    // uid's primary gid from its lowest-numbered live session (no
    // supplementary groups), and with no session judges by the uid alone.
    bool creates = false;
    if (uid == s.peer.uid) {
        creates = may_create(s.peer);
    } else {
        auto sit = std::find_if(sessions_.begin(), sessions_.end(),
                                [uid](const auto& e) { return e.second.peer.uid == uid; });
        if (sit != sessions_.end()) {
            creates = may_create(Peer{0, uid, sit->second.peer.gid, {}, {}});
        } else {
            const auto& users = policy_.users;
            creates = uid == 0 || policy_.anyone || std::find(users.begin(), users.end(), uid) != users.end();
        }
    }
    Usage u;
    if (auto it = usage_.find(uid); it != usage_.end()) u = it->second;
    const Limits l = limited(uid) ? limits_for(uid) : Limits{0, 0, 0, limits_.handles_per_session};
    Message rep = proto::reply(req, Result::ok);
    rep.mr[2] = proto::pack(u.sessions, l.sessions_per_user);
    rep.mr[3] = proto::pack(u.semaphores, l.semaphores_per_user);
    rep.mr[4] = proto::pack(u.waits, l.waits_per_user);
    rep.mr[5] = proto::pack(uid, creates ? 1u : 0u);
    rep.mr[6] = l.handles_per_session;
    return rep;
}

// ---------------------------------------------------------------------------
// Grants and waits

void SemaphoreTable::grant(Sem& sem, SessionId session, std::uint32_t count, const Now& now) {
    sem.held += count;
    ++sem.last_token;
    // Reserve the next block while half of this one is still left: the
    // daemon saves at the end of the pass that crossed the half, so the
    // saved mark stays ahead of every token already sent, even those of
    // the next pass (a crash between a reply and the save never hands
    // out a token twice after the restart).
    if (sem.persistent && sem.last_token + token_block / 2 > sem.token_mark) {
        sem.token_mark = sem.last_token + token_block;
        persistent_dirty_ = true;
    }
    Holding& h = sem.holders[session];
    if (h.count == 0) h.since_real = now.real_ns;
    h.count += count;
}

void SemaphoreTable::pump(Sem& sem, const Now& now, Outbox& out) {
    // Strict FIFO: stop at the first waiter that does not fit, even if a
    // smaller request behind it would.
    while (!sem.waiters.empty() && fits(sem, sem.waiters.front().count)) {
        auto it = sem.waiters.begin();
        grant(sem, it->session, it->count, now);
        out.push_back({it->session, grant_reply(it->request_id, sem.last_token, sem.holders.at(it->session).count)});
        unlink_waiter(sem, it);
    }
}

void SemaphoreTable::unlink_waiter(Sem& sem, std::list<Waiter>::iterator it) {
    waits_.erase(it->id);
    if (it->deadline != no_deadline) deadlines_.erase({it->deadline, it->id});
    auto sit = sessions_.find(it->session);
    if (sit != sessions_.end()) {
        --sit->second.waits;
        auto u = usage_.find(sit->second.peer.uid);
        if (u != usage_.end()) --u->second.waits;
    }
    sem.waiters.erase(it);
}

void SemaphoreTable::erase_sem(Sem& sem, Outbox& out) {
    while (!sem.waiters.empty()) {
        auto it = sem.waiters.begin();
        out.push_back({it->session, deferred_reply(Op::acquire, it->request_id, Result::deleted)});
        unlink_waiter(sem, it);
    }
    if (sem.counted) {
        auto u = usage_.find(sem.owner);
        if (u != usage_.end() && u->second.semaphores != 0) --u->second.semaphores;
        forget_if_idle(sem.owner);
    }
    if (sem.persistent) persistent_dirty_ = true;
    // Holders' permits vanish with the semaphore; their handles now dangle
    // (not_found) until closed.
    by_name_.erase(sem.name);
    sems_.erase(sem.id);
}

std::optional<std::int64_t> SemaphoreTable::next_deadline() const {
    if (deadlines_.empty()) return std::nullopt;
    return deadlines_.begin()->first;
}

void SemaphoreTable::expire(const Now& now, Outbox& out) {
    while (!deadlines_.empty() && deadlines_.begin()->first <= now.mono_ns) {
        const WaitRef ref = waits_.at(deadlines_.begin()->second);
        Sem& sem = sems_.at(ref.sem);
        out.push_back({ref.it->session, deferred_reply(Op::acquire, ref.it->request_id, Result::timed_out)});
        unlink_waiter(sem, ref.it);
        // The head may have left: whoever queued behind it may fit now.
        pump(sem, now, out);
    }
}

void SemaphoreTable::stop(Outbox& out) {
    stopping_ = true;
    for (auto& [id, sem] : sems_) {
        while (!sem.waiters.empty()) {
            auto it = sem.waiters.begin();
            out.push_back({it->session, deferred_reply(Op::acquire, it->request_id, Result::stopping)});
            unlink_waiter(sem, it);
        }
    }
}

// ---------------------------------------------------------------------------
// Persistence

std::vector<Definition> SemaphoreTable::persistent() const {
    std::vector<Definition> v;
    for (const auto& [name, id] : by_name_) {
        const Sem& sem = sems_.at(id);
        if (!sem.persistent) continue;
        v.push_back(Definition{sem.name, sem.permits, sem.owner, sem.group, sem.mode,
                               std::max(sem.last_token, sem.token_mark)});
    }
    return v;
}

SemaphoreTable::Sem& SemaphoreTable::add_sem(const std::string& name, std::uint32_t permits, uid_t owner, gid_t group,
                                             std::uint32_t mode, bool persistent, bool counted) {
    const SemId id = next_sem_++;
    Sem& sem = sems_[id];
    sem.id = id;
    sem.name = name;
    sem.permits = permits;
    sem.owner = owner;
    sem.group = group;
    sem.mode = mode;
    sem.persistent = persistent;
    sem.counted = counted;
    sem.last_token = token_floor_;
    by_name_.emplace(sem.name, id);
    return sem;
}

Result SemaphoreTable::restore(const Definition& d) {
    if (!proto::valid_name(d.name) || d.permits == 0 || d.mode > 0777) return Result::invalid_argument;
    if (by_name_.count(d.name) != 0) return Result::exists;
    Sem& sem = add_sem(d.name, d.permits, d.owner, d.group, d.mode, /*persistent=*/true, /*counted=*/true);
    sem.last_token = sem.token_mark = d.last_token;
    ++usage_[d.owner].semaphores;
    return Result::ok;
}

// ---------------------------------------------------------------------------
// Configuration

void SemaphoreTable::set_limits(const Limits& defaults, std::map<uid_t, UserLimits> per_user) {
    limits_ = defaults;
    per_user_ = std::move(per_user);
}

Limits SemaphoreTable::limits_for(uid_t uid) const {
    Limits l = limits_;
    auto it = per_user_.find(uid);
    if (it == per_user_.end()) return l;
    const UserLimits& u = it->second;
    if (u.sessions) l.sessions_per_user = *u.sessions;
    if (u.semaphores) l.semaphores_per_user = *u.semaphores;
    if (u.waits) l.waits_per_user = *u.waits;
    return l;
}

bool SemaphoreTable::may_create(const Peer& peer) const {
    if (peer.uid == 0 || policy_.anyone) return true;
    const auto& users = policy_.users;
    if (std::find(users.begin(), users.end(), peer.uid) != users.end()) return true;
    for (gid_t g : policy_.groups) {
        if (g == peer.gid) return true;
        if (std::find(peer.groups.begin(), peer.groups.end(), g) != peer.groups.end()) return true;
    }
    return false;
}

void SemaphoreTable::forget_if_idle(uid_t uid) {
    auto u = usage_.find(uid);
    if (u != usage_.end() && u->second.sessions == 0 && u->second.semaphores == 0 && u->second.waits == 0)
        usage_.erase(u);
}

void SemaphoreTable::set_permits(Sem& sem, std::uint32_t permits, const Now& now, Outbox& out) {
    if (permits == sem.permits) return;
    const bool lowered = permits < sem.permits;
    sem.permits = permits;
    if (sem.persistent) persistent_dirty_ = true;
    if (lowered) {
        // Waiters that want more than the semaphore now has can never be
        // granted (acquire refuses such a count up front: the same answer).
        for (auto it = sem.waiters.begin(); it != sem.waiters.end();) {
            auto next = std::next(it);
            if (it->count > permits) {
                out.push_back({it->session, deferred_reply(Op::acquire, it->request_id, Result::too_many)});
                unlink_waiter(sem, it);
            }
            it = next;
        }
    }
    // Raised: more fits. Lowered: a refused head may have been all that
    // blocked the queue (pump grants only while held + count <= permits).
    pump(sem, now, out);
}

DeclareReport SemaphoreTable::declare(const std::vector<Declared>& decls, const Now& now, Outbox& out) {
    DeclareReport report;
    std::set<std::string, std::less<>> wanted;  // names of usable entries, and names refused entries keep
    for (const Declared& d : decls) {
        if (!proto::valid_name(d.name) || d.permits == 0 || d.mode > 0777 || wanted.count(d.name) != 0) {
            report.refused.push_back(d.name);
            // A refused entry leaves a declared semaphore of that name
            // declared, as it was, rather than undeclaring it below.
            if (proto::valid_name(d.name)) wanted.insert(d.name);
            continue;
        }
        wanted.insert(d.name);
        auto it = by_name_.find(d.name);
        if (it == by_name_.end()) {
            Sem& sem = add_sem(d.name, d.permits, d.owner, d.group, d.mode, /*persistent=*/true, /*counted=*/false);
            sem.declared = true;
            persistent_dirty_ = true;
            report.created.push_back(d.name);
            continue;
        }
        Sem& sem = sems_.at(it->second);
        const bool adopt = !sem.declared;
        const bool differs =
            sem.permits != d.permits || sem.owner != d.owner || sem.group != d.group || sem.mode != d.mode;
        if (adopt) {
            if (sem.counted) {
                auto u = usage_.find(sem.owner);
                if (u != usage_.end() && u->second.semaphores != 0) --u->second.semaphores;
                forget_if_idle(sem.owner);
                sem.counted = false;
            }
            sem.declared = true;
            // A non-persistent one has token_mark 0: its next grant reserves
            // a block, and persistent() saves last_token meanwhile.
            sem.persistent = true;
            persistent_dirty_ = true;
        }
        if (differs) {
            sem.owner = d.owner;
            sem.group = d.group;
            sem.mode = d.mode;
            persistent_dirty_ = true;
            set_permits(sem, d.permits, now, out);
        }
        if (adopt)
            report.adopted.push_back(d.name);
        else if (differs)
            report.changed.push_back(d.name);
    }
    for (auto& [name, id] : by_name_) {
        Sem& sem = sems_.at(id);
        if (!sem.declared || wanted.count(name) != 0) continue;
        // Stays persistent and uncounted: it belongs to nobody's quota, and
        // its holders, waiters and tokens carry on.
        sem.declared = false;
        report.undeclared.push_back(name);
    }
    return report;
}

}  // namespace ipcd
