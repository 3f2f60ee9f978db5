// daemon/semaphore_table.cpp - the semaphore state machine (see the header).
//
// Every operation is a straight line of guards, each answering an error and
// changing nothing, then the commit, then the mutation. Messages come from
// untrusted peers: every register is checked before it is used.
#include "semaphore_table.hpp"

#include <algorithm>
#include <iterator>

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
    Usage& u = usage_[peer.uid];
    if (limited(peer.uid) && u.sessions >= limits_.sessions_per_user) return Result::limit;
    // commit
    ++u.sessions;
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
            sem.available += h->second.count;
            d.permits_released += h->second.count;
            ++d.semaphores_held;
            sem.holders.erase(h);
            any = true;
        }
        if (any) touched.push_back(sem.id);
    }
    Usage& u = usage_[s.peer.uid];
    --u.sessions;
    if (u.sessions == 0 && u.semaphores == 0 && u.waits == 0) usage_.erase(s.peer.uid);
    sessions_.erase(sit);
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
    if (by_name_.count(*name) != 0) return proto::reply(req, Result::exists);
    Usage& u = usage_[s.peer.uid];
    if (limited(s.peer.uid) && u.semaphores >= limits_.semaphores_per_user) return proto::reply(req, Result::limit);
    if (s.handles.size() >= limits_.handles_per_session) return proto::reply(req, Result::limit);
    // commit
    const SemId id = next_sem_++;
    Sem& sem = sems_[id];
    sem.id = id;
    sem.name = *name;
    sem.permits = sem.available = permits;
    sem.owner = s.peer.uid;
    sem.group = s.peer.gid;
    sem.mode = mode;
    sem.persistent = (req.flags() & proto::create_persist) != 0;
    sem.counted = true;
    ++u.semaphores;
    by_name_.emplace(sem.name, id);
    if (sem.persistent) persistent_dirty_ = true;
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
    if (sem->waiters.empty() && sem->available >= n) {
        // commit: granted now.
        grant(*sem, id, n, now);
        return grant_reply(req.mr[0], sem->last_token, sem->holders.at(id).count);
    }
    if (timeout == 0) return proto::reply(req, Result::would_block);
    if (stopping_) return proto::reply(req, Result::stopping);
    Usage& u = usage_[s.peer.uid];
    if (limited(s.peer.uid) && u.waits >= limits_.waits_per_user) return proto::reply(req, Result::limit);
    // commit: the request waits; its reply comes from pump(), expire(),
    // erase_sem() or stop().
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
    if (!allowed(*sem, s.peer, want_write)) return proto::reply(req, Result::permission_denied);
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
    sem->available += n;
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
    rep.mr[2] = proto::pack(sem->permits, sem->available);
    rep.mr[3] = proto::pack(static_cast<std::uint32_t>(sem->holders.size()),
                            static_cast<std::uint32_t>(sem->waiters.size()));
    rep.mr[4] = proto::pack(sem->owner, sem->group);
    rep.mr[5] = proto::pack(sem->mode, sem->persistent ? proto::sem_persistent : 0u);
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
    rep.mr[6] = proto::pack(sem.permits, sem.available);
    return rep;
}

std::optional<Message> SemaphoreTable::op_remove(SessionRec& s, const Message& req, Outbox& out) {
    auto name = proto::unpack_name(req, 2);
    if (!name) return proto::reply(req, Result::invalid_argument);
    auto it = by_name_.find(*name);
    if (it == by_name_.end()) return proto::reply(req, Result::not_found);
    Sem& sem = sems_.at(it->second);
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

// ---------------------------------------------------------------------------
// Grants and waits

void SemaphoreTable::grant(Sem& sem, SessionId session, std::uint32_t count, const Now& now) {
    sem.available -= count;
    ++sem.last_token;
    if (sem.persistent && sem.last_token > sem.token_mark) {
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
    while (!sem.waiters.empty() && sem.waiters.front().count <= sem.available) {
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
        if (u != usage_.end()) {
            --u->second.semaphores;
            if (u->second.sessions == 0 && u->second.semaphores == 0 && u->second.waits == 0) usage_.erase(u);
        }
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

Result SemaphoreTable::restore(const Definition& d) {
    if (!proto::valid_name(d.name) || d.permits == 0 || d.mode > 0777) return Result::invalid_argument;
    if (by_name_.count(d.name) != 0) return Result::exists;
    const SemId id = next_sem_++;
    Sem& sem = sems_[id];
    sem.id = id;
    sem.name = d.name;
    sem.permits = sem.available = d.permits;
    sem.owner = d.owner;
    sem.group = d.group;
    sem.mode = d.mode;
    sem.persistent = true;
    sem.counted = true;
    sem.last_token = sem.token_mark = d.last_token;
    ++usage_[d.owner].semaphores;
    by_name_.emplace(sem.name, id);
    return Result::ok;
}

}  // namespace ipcd
