// libipc/session.cpp - the ipcd client (ipc/semaphore.hpp).
//
// A Session owns the socket (its liveness is the session's life) and the
// session memfd with its two SPSC rings. call() is thread-safe:
//
//   - At most ring_capacity requests are in flight per session (callers
//     beyond that wait for a slot), so the reply ring can always hold every
//     answer the daemon owes us even if nobody is reading: a well-behaved
//     client is never dropped for a full reply ring. Acquires that may wait
//     get only three quarters of the slots: the rest stay free for requests
//     the daemon answers at once, so a release can always be sent, even
//     while a crowd of threads waits for the permits it gives back.
//   - send_mu_ makes the request ring single-producer.
//   - Replies are demultiplexed by request id. One waiting thread at a time
//     is the receiver: it sleeps on the reply ring in slices of 50 ms,
//     hands each reply to its caller (a condition variable per call), and
//     between slices polls the socket: a hang-up means the daemon died (or
//     dropped us), and every call then fails fast with ECONNRESET. When the
//     receiver's own reply arrives it passes the role to another waiter.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>

#include "ipc/channel.hpp"
#include "ipc/mapping.hpp"
#include "ipc/semaphore.hpp"
#include "sys.hpp"

namespace ipc {

using proto::Op;
using proto::Result;

namespace {

constexpr auto receive_slice = std::chrono::milliseconds(50);
constexpr int handshake_timeout_ms = 5000;

class DaemonCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "ipcd"; }
    std::string message(int c) const override { return proto::describe(static_cast<Result>(c)); }
};

std::error_code errno_code(int e) { return {e, std::generic_category()}; }

// Throws for a failed call, naming what was attempted.
[[noreturn]] void fail(std::error_code ec, const std::string& what) {
    if (ec == std::errc::connection_reset) throw std::system_error(ec, what + ": ipcd went away");
    throw std::system_error(ec, what);
}

std::string quoted(std::string_view name) { return "'" + std::string(name) + "'"; }

void check_name(std::string_view name, const char* what) {
    if (!proto::valid_name(name))
        throw std::system_error(proto::make_error_code(Result::invalid_argument),
                                std::string(what) + " " + quoted(name) +
                                    ": a name is 1-32 characters of A-Z a-z 0-9 . _ - not starting with '.'");
}

std::chrono::system_clock::time_point from_ns(std::uint64_t ns) {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(ns)));
}

}  // namespace

const std::error_category& daemon_category() noexcept {
    static const DaemonCategory c;
    return c;
}

// ---------------------------------------------------------------------------

struct Session::Impl {
    struct Pending {
        std::condition_variable cv;
        bool done = false;
        Message reply;
    };

    std::string path;
    detail::UniqueFd sock;
    std::shared_ptr<Mapping> mapping;
    Channel requests;  // we are its only sender (send_mu)
    Channel replies;   // we are its only receiver (the receiver role)
    std::uint32_t id = 0;
    std::uint32_t max_inflight = 1;  // requests in flight
    std::uint32_t max_waiting = 1;   // of which acquires that may wait

    std::mutex send_mu;
    std::mutex mu;  // guards everything below
    std::condition_variable slot_cv;
    std::unordered_map<std::uint64_t, Pending*> pending;
    std::uint64_t next_id = 1;
    std::uint32_t inflight = 0;
    std::uint32_t waiting = 0;
    bool receiving = false;
    std::error_code dead;  // once set, every call fails with it

    // True if the daemon's end of the socket is gone. The daemon never
    // writes after the Hello, so readable means EOF too.
    bool peer_gone() noexcept {
        pollfd p{sock.get(), POLLIN | POLLRDHUP, 0};
        const int r = detail::retry_eintr([&] { return ::poll(&p, 1, 0); });
        return r > 0 && (p.revents & (POLLIN | POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) != 0;
    }

    // mu held.
    void dispatch(const Message& m) noexcept {
        if (!(m.flags() & proto::reply_flag)) return;
        auto it = pending.find(m.mr[0]);
        if (it == pending.end()) return;  // not ours (cannot happen with a sane daemon)
        it->second->reply = m;
        it->second->done = true;
        it->second->cv.notify_one();
    }

    // mu held.
    void mark_dead(std::error_code ec) noexcept {
        if (!dead) dead = ec;
        for (auto& [rid, p] : pending) p->cv.notify_one();
        slot_cv.notify_all();
    }

    // mu held: the receiver role is free; wake one waiter to take it.
    void hand_off() noexcept {
        for (auto& [rid, p] : pending)
            if (!p->done) {
                p->cv.notify_one();
                return;
            }
    }

    // One turn of the receiver role (mu not held).
    void receive() noexcept {
        Message m;
        const Status s = replies.recv_until(m, Clock::now() + receive_slice);
        std::lock_guard g(mu);
        if (s == Status::ok) {
            dispatch(m);
            while (replies.try_recv(m) == Status::ok) dispatch(m);
            return;
        }
        if (s == Status::timed_out) {
            if (!peer_gone()) return;
            // Gone. Collect what it answered before it went, then fail the rest.
            while (replies.try_recv(m) == Status::ok) dispatch(m);
            mark_dead(errno_code(ECONNRESET));
            return;
        }
        // closed / corrupted: the daemon broke our ring.
        mark_dead(errno_code(s == Status::corrupted ? EPROTO : ECONNRESET));
    }

    std::error_code send(const Message& m) noexcept {
        std::lock_guard g(send_mu);
        for (;;) {
            Status s = requests.try_send(m);
            if (s == Status::would_block) s = requests.send_until(m, Clock::now() + receive_slice);
            if (s == Status::ok) return {};
            if (s != Status::timed_out || peer_gone()) {
                std::lock_guard l(mu);
                mark_dead(errno_code(s == Status::corrupted ? EPROTO : ECONNRESET));
                return dead;
            }
        }
    }
};

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

std::string Session::default_socket_path() {
    if (const char* e = std::getenv("IPCD_SOCKET"); e && *e) return e;
    if (::geteuid() == 0) return "/run/ipcd/ipcd.sock";
    if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return std::string(x) + "/ipcd.sock";
    return "/run/user/" + std::to_string(::geteuid()) + "/ipcd.sock";
}

std::shared_ptr<Session> Session::connect(std::string_view socket_path) {
    auto impl = std::make_unique<Impl>();
    impl->path = socket_path.empty() ? default_socket_path() : std::string(socket_path);
    const std::string& path = impl->path;

    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        throw std::system_error(ENAMETOOLONG, std::generic_category(), "ipcd socket path '" + path + "'");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    impl->sock.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!impl->sock) throw detail::errno_error("create a Unix socket");
    if (detail::retry_eintr([&] {
            return ::connect(impl->sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        }) != 0) {
        const int e = errno;
        if (e == ENOENT || e == ECONNREFUSED)
            throw std::system_error(e, std::generic_category(), "no daemon at " + path + ": is ipcd running?");
        throw std::system_error(e, std::generic_category(), "connect to ipcd at " + path);
    }

    // The Hello, with the session memfd attached.
    pollfd pfd{impl->sock.get(), POLLIN, 0};
    const int pr = detail::retry_eintr([&] { return ::poll(&pfd, 1, handshake_timeout_ms); });
    if (pr == 0)
        throw std::system_error(ETIMEDOUT, std::generic_category(),
                                "ipcd at " + path + " did not answer the handshake within 5 s");
    if (pr < 0) throw detail::errno_error("wait for ipcd's handshake at " + path);
    proto::Hello hello{};
    iovec iov{&hello, sizeof hello};
    alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = detail::retry_eintr([&] { return ::recvmsg(impl->sock.get(), &msg, MSG_CMSG_CLOEXEC); });
    if (n < 0) throw detail::errno_error("receive ipcd's handshake at " + path);
    detail::UniqueFd memfd;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < fds; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (!memfd)
                memfd.reset(fd);
            else
                ::close(fd);  // only one is expected; never leak extras
        }
    }
    if (n == 0)
        throw std::system_error(ECONNRESET, std::generic_category(),
                                "ipcd at " + path + " closed the connection during the handshake");
    if (n != static_cast<ssize_t>(sizeof hello) || hello.magic != proto::hello_magic)
        throw std::system_error(EPROTO, std::generic_category(),
                                "malformed handshake from " + path + ": is that socket an ipcd?");
    if (hello.version != proto::version)
        throw std::system_error(EPROTO, std::generic_category(),
                                "ipcd at " + path + " speaks protocol version " + std::to_string(hello.version) +
                                    ", this library speaks version " + std::to_string(proto::version) +
                                    ": use a matching libipc and ipcd");
    if (hello.session_id == 0) {
        const auto why = static_cast<Result>(hello.reserved);
        throw std::system_error(proto::make_error_code(why == Result::ok ? Result::limit : why),
                                "ipcd at " + path + " refused the session");
    }
    if (!memfd || hello.segment_size < sizeof(proto::SessionHeader))
        throw std::system_error(EPROTO, std::generic_category(),
                                "ipcd at " + path + " sent a handshake without a usable session segment");

    try {
        impl->mapping = Mapping::map_fd(memfd.get());
        const auto* h = static_cast<const proto::SessionHeader*>(impl->mapping->data());
        const std::size_t size = impl->mapping->size();
        if (size != hello.segment_size || h->magic != proto::session_magic || h->version != proto::version ||
            h->session_id != hello.session_id || h->request_offset >= size || h->reply_offset >= size)
            throw std::system_error(EPROTO, std::generic_category(), "bad session header");
        impl->requests = Channel::open_in(impl->mapping, h->request_offset);
        impl->replies = Channel::open_in(impl->mapping, h->reply_offset);
        if (impl->requests.kind() != ChannelKind::spsc || impl->replies.kind() != ChannelKind::spsc)
            throw std::system_error(EPROTO, std::generic_category(), "session rings are not SPSC");
    } catch (const std::system_error& e) {
        throw std::system_error(e.code(), "ipcd at " + path + " sent an unusable session segment: " + e.what());
    }
    impl->id = hello.session_id;
    impl->max_inflight = std::min(impl->requests.capacity(), impl->replies.capacity());
    impl->max_waiting = impl->max_inflight > 1 ? impl->max_inflight - std::max(1u, impl->max_inflight / 4) : 1;
    return std::shared_ptr<Session>(new Session(std::move(impl)));
}

std::error_code Session::call(const Message& request, Message& reply) noexcept {
    Message req = request;  // mr[0] gets our request id
    Impl& s = *impl_;
    Impl::Pending p;
    std::uint64_t id;
    // An acquire with a timeout may sit in the daemon indefinitely.
    const bool may_wait = req.label() == static_cast<std::uint32_t>(Op::acquire) && req.mr[3] != 0;
    {
        std::unique_lock lk(s.mu);
        s.slot_cv.wait(lk, [&] {
            return s.dead || (s.inflight < s.max_inflight && (!may_wait || s.waiting < s.max_waiting));
        });
        if (s.dead) return s.dead;
        id = s.next_id++;
        try {
            s.pending.emplace(id, &p);
        } catch (const std::bad_alloc&) {
            return errno_code(ENOMEM);
        }
        ++s.inflight;
        if (may_wait) ++s.waiting;
    }
    req.mr[0] = id;
    std::error_code ec = s.send(req);

    std::unique_lock lk(s.mu);
    if (!ec) {
        while (!p.done && !s.dead) {
            if (s.receiving) {
                p.cv.wait(lk);
                continue;
            }
            s.receiving = true;
            lk.unlock();
            s.receive();
            lk.lock();
            s.receiving = false;
        }
        if (!p.done) ec = s.dead;
    }
    s.pending.erase(id);
    --s.inflight;
    if (may_wait) --s.waiting;
    s.slot_cv.notify_all();  // callers wait for different kinds of slot
    if (!s.receiving) s.hand_off();
    if (ec) return ec;
    reply = p.reply;
    const auto r = static_cast<Result>(p.reply.mr[1]);
    return r == Result::ok ? std::error_code{} : proto::make_error_code(r);
}

DaemonStatus Session::status() {
    Message rep;
    if (auto ec = call(proto::request(Op::status, 0), rep)) fail(ec, "ipcd status");
    return DaemonStatus{rep.mr[2], rep.mr[3], rep.mr[4], static_cast<pid_t>(rep.mr[5]),
                        std::chrono::system_clock::time_point(std::chrono::seconds(rep.mr[6]))};
}

std::vector<SemaphoreInfo> Session::list() {
    std::vector<SemaphoreInfo> out;
    for (std::uint64_t i = 0;; ++i) {
        Message req = proto::request(Op::list, 0);
        req.mr[2] = i;
        Message rep;
        const std::error_code ec = call(req, rep);
        if (ec == Result::end) break;
        if (ec) fail(ec, "list semaphores");
        SemaphoreInfo info;
        info.name = proto::unpack_name(rep, 2).value_or("?");
        info.permits = proto::low(rep.mr[6]);
        info.available = proto::high(rep.mr[6]);
        out.push_back(std::move(info));
    }
    return out;
}

SemaphoreInfo Session::stat(std::string_view name, bool details) {
    Semaphore sem = Semaphore::open(shared_from_this(), name);
    return sem.stat(details);
}

std::vector<SessionInfo> Session::sessions() {
    std::vector<SessionInfo> out;
    for (std::uint64_t after = 0;; after = out.back().id) {
        Message req = proto::request(Op::sessions, 0);
        req.mr[2] = after;
        Message rep;
        const std::error_code ec = call(req, rep);
        if (ec == Result::end) break;
        if (ec) fail(ec, "list ipcd sessions");
        SessionInfo info;
        info.id = proto::low(rep.mr[2]);
        info.pid = static_cast<pid_t>(proto::high(rep.mr[2]));
        info.uid = proto::low(rep.mr[3]);
        info.gid = proto::high(rep.mr[3]);
        info.permits_held = proto::low(rep.mr[4]);
        info.waits = proto::high(rep.mr[4]);
        char comm[proto::comm_max];
        static_assert(sizeof comm == 2 * sizeof rep.mr[5], "the command name fills mr5..6");
        std::memcpy(comm, &rep.mr[5], sizeof comm);
        info.comm.assign(comm, ::strnlen(comm, sizeof comm));
        out.push_back(std::move(info));
    }
    return out;
}

ReleaseResult Session::release_session(std::uint32_t id) {
    Message req = proto::request(Op::release_session, 0);
    req.mr[2] = id;
    Message rep;
    if (auto ec = call(req, rep)) fail(ec, "release ipcd session " + std::to_string(id));
    return ReleaseResult{rep.mr[2], static_cast<std::uint32_t>(rep.mr[3])};
}

std::uint32_t Session::reload() {
    Message rep;
    if (auto ec = call(proto::request(Op::reload, 0), rep)) fail(ec, "reload ipcd's configuration");
    return static_cast<std::uint32_t>(rep.mr[2]);
}

UsageInfo Session::usage(std::optional<uid_t> uid) {
    Message req = proto::request(Op::usage, 0);
    req.mr[2] = uid ? std::uint64_t{*uid} : UINT64_MAX;
    Message rep;
    if (auto ec = call(req, rep))
        fail(ec, uid ? "ipcd usage of uid " + std::to_string(*uid) : std::string("ipcd usage"));
    UsageInfo u;
    u.sessions = {proto::low(rep.mr[2]), proto::high(rep.mr[2])};
    u.semaphores = {proto::low(rep.mr[3]), proto::high(rep.mr[3])};
    u.waits = {proto::low(rep.mr[4]), proto::high(rep.mr[4])};
    u.uid = proto::low(rep.mr[5]);
    u.may_create = proto::high(rep.mr[5]) != 0;
    u.handles_per_session = static_cast<std::uint32_t>(rep.mr[6]);
    return u;
}

std::uint32_t Session::id() const noexcept { return impl_->id; }
int Session::socket_fd() const noexcept { return impl_->sock.get(); }
const std::string& Session::socket_path() const noexcept { return impl_->path; }

void Session::set_inheritable(bool inheritable) {
    const int fd = impl_->sock.get();
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0 || ::fcntl(fd, F_SETFD, inheritable ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC) != 0)
        throw detail::errno_error("set FD_CLOEXEC on the ipcd session socket");
}

// ---------------------------------------------------------------------------
// Semaphore

Semaphore Semaphore::create(std::shared_ptr<Session> session, std::string_view name, std::uint32_t permits,
                            mode_t mode, bool persist) {
    check_name(name, "create semaphore");
    Message req = proto::request(Op::create, 0, persist ? proto::create_persist : 0u);
    req.mr[1] = proto::pack(permits, static_cast<std::uint32_t>(mode));
    proto::pack_name(req, 2, name);
    Message rep;
    if (auto ec = session->call(req, rep)) fail(ec, "create semaphore " + quoted(name));
    return Semaphore(std::move(session), std::string(name), rep.mr[2]);
}

Semaphore Semaphore::open(std::shared_ptr<Session> session, std::string_view name) {
    check_name(name, "open semaphore");
    Message req = proto::request(Op::open, 0);
    proto::pack_name(req, 2, name);
    Message rep;
    if (auto ec = session->call(req, rep)) fail(ec, "open semaphore " + quoted(name));
    return Semaphore(std::move(session), std::string(name), rep.mr[2]);
}

void Semaphore::remove(Session& session, std::string_view name) {
    check_name(name, "delete semaphore");
    Message req = proto::request(Op::remove, 0);
    proto::pack_name(req, 2, name);
    Message rep;
    if (auto ec = session.call(req, rep)) fail(ec, "delete semaphore " + quoted(name));
}

Semaphore::Semaphore(Semaphore&& o) noexcept
    : session_(std::move(o.session_)),
      name_(std::move(o.name_)),
      handle_(std::exchange(o.handle_, 0)),
      token_(o.token_.exchange(0, std::memory_order_relaxed)) {}

Semaphore& Semaphore::operator=(Semaphore&& o) noexcept {
    if (this == &o) return *this;
    close_handle();
    session_ = std::move(o.session_);
    name_ = std::move(o.name_);
    handle_ = std::exchange(o.handle_, 0);
    token_.store(o.token_.exchange(0, std::memory_order_relaxed), std::memory_order_relaxed);
    return *this;
}

Semaphore::~Semaphore() { close_handle(); }

void Semaphore::close_handle() noexcept {
    if (!session_) return;
    // Refused (busy) while this session holds permits: the handle then stays
    // open, and the permits held, until released or the session ends.
    Message req = proto::request(Op::close, 0);
    req.mr[1] = handle_;
    Message rep;
    (void)session_->call(req, rep);
    session_.reset();
}

std::error_code Semaphore::acquire_impl(std::uint32_t n, std::uint64_t timeout_ns, std::uint64_t* token) noexcept {
    if (!session_) return proto::make_error_code(Result::bad_handle);
    Message req = proto::request(Op::acquire, 0);
    req.mr[1] = handle_;
    req.mr[2] = n;
    req.mr[3] = timeout_ns;
    Message rep;
    const std::error_code ec = session_->call(req, rep);
    if (!ec) {
        token_.store(rep.mr[2], std::memory_order_relaxed);
        if (token) *token = rep.mr[2];
    }
    return ec;
}

std::error_code Semaphore::acquire(std::uint32_t n) noexcept {
    return acquire_impl(n, proto::wait_forever, nullptr);
}
std::error_code Semaphore::try_acquire(std::uint32_t n) noexcept { return acquire_impl(n, 0, nullptr); }

std::error_code Semaphore::acquire_for(std::uint32_t n, std::chrono::nanoseconds timeout) noexcept {
    // At least 1 ns, so that even a zero timeout reports timed_out (a
    // timeout of 0 on the wire means try_acquire); below "forever".
    const auto ns = timeout.count() <= 0 ? std::uint64_t{1} : static_cast<std::uint64_t>(timeout.count());
    return acquire_impl(n, std::min<std::uint64_t>(ns, proto::wait_forever - 1), nullptr);
}

std::error_code Semaphore::release(std::uint32_t n) noexcept {
    if (!session_) return proto::make_error_code(Result::bad_handle);
    Message req = proto::request(Op::release, 0);
    req.mr[1] = handle_;
    req.mr[2] = n;
    Message rep;
    return session_->call(req, rep);
}

SemaphoreInfo Semaphore::stat(bool details) {
    if (!session_) throw std::system_error(proto::make_error_code(Result::bad_handle), "stat of a closed semaphore");
    Message req = proto::request(Op::stat, 0);
    req.mr[1] = handle_;
    Message rep;
    if (auto ec = session_->call(req, rep)) fail(ec, "stat semaphore " + quoted(name_));
    SemaphoreInfo info;
    info.name = name_;
    info.permits = proto::low(rep.mr[2]);
    info.available = proto::high(rep.mr[2]);
    info.holder_count = proto::low(rep.mr[3]);
    info.waiter_count = proto::high(rep.mr[3]);
    info.owner = proto::low(rep.mr[4]);
    info.group = proto::high(rep.mr[4]);
    info.mode = proto::low(rep.mr[5]);
    info.persistent = (proto::high(rep.mr[5]) & proto::sem_persistent) != 0;
    info.declared = (proto::high(rep.mr[5]) & proto::sem_declared) != 0;
    info.last_token = rep.mr[6];
    if (!details) return info;
    for (Op op : {Op::holder, Op::waiter}) {
        auto& into = op == Op::holder ? info.holders : info.waiters;
        for (std::uint64_t i = 0;; ++i) {
            Message q = proto::request(op, 0);
            q.mr[1] = handle_;
            q.mr[2] = i;
            Message r;
            const std::error_code ec = session_->call(q, r);
            if (ec == Result::end) break;
            if (ec) fail(ec, "stat semaphore " + quoted(name_));
            into.push_back(HolderInfo{static_cast<pid_t>(proto::low(r.mr[2])), proto::high(r.mr[2]),
                                      static_cast<std::uint32_t>(r.mr[3]), from_ns(r.mr[4]),
                                      static_cast<std::uint32_t>(r.mr[5])});
        }
    }
    return info;
}

SemaphoreGuard::SemaphoreGuard(Semaphore& sem, std::uint32_t n) : sem_(sem), n_(n), token_(0) {
    if (auto ec = sem_.acquire_impl(n_, proto::wait_forever, &token_))
        fail(ec, "acquire " + std::to_string(n) + " of semaphore " + quoted(sem.name()));
}

SemaphoreGuard::~SemaphoreGuard() { (void)sem_.release(n_); }

}  // namespace ipc
