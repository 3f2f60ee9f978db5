// bench/channel_bench.cpp - the shared-memory channel against its peers, in one run.
//
// Every figure is measured between two (or more) processes: the parent
// measures, the peer runs in a forked child. Messages are ipc::Message, 64
// bytes. Three families:
//
//   rt/...      round trip (ping-pong), ns per round trip. The parent sends,
//               the child echoes, the parent checks the echo.
//   tput/...    one-way throughput, messages per second. The parent (or a
//               set of producer children) streams; the consumer child copies
//               every message out whole, counts it and sums a word of it, and
//               the parent checks count and sum at the end. The clock stops
//               when the consumer has acknowledged the last message, so
//               nothing still buffered in a ring or a pipe counts as delivered.
//   pinned/...  parent and child pinned to CPU 0: a spinning side must give
//               the CPU to its peer instead of burning scheduler ticks.
//
// Floors written here, in the same style as libipc (see BareRing below):
// a bare SPSC ring, a bare cache-line ping-pong and a bare futex ping-pong.
//
// At the end the binary prints a table of medians with each figure's ratio to
// this project's, and the targets of docs/performance.md, reached or not.
// scripts/bench.sh runs it with repetitions; docs/performance.md has numbers.
#include <fcntl.h>
#include <mqueue.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/interprocess/ipc/message_queue.hpp>

#include "bench_util.hpp"
#include "ipc/channel.hpp"
#include "ipc/message.hpp"

namespace {

using bench::Child;
using bench::cpu_relax;
using bench::die;
using bench::Placement;
using bench::Shared;
using ipc::Message;
using ipc::Status;
using Clock = std::chrono::steady_clock;

constexpr std::uint32_t kData = 1;  // a message that counts
constexpr std::uint32_t kSync = 2;  // consumer: publish what you have received
constexpr std::uint32_t kStop = 3;  // peer: exit

// Capacity of every throughput ring (ours, the bare ring, Boost's queue).
constexpr std::uint32_t kCapacity = 4096;
// Messages per benchmark iteration in the throughput runs.
constexpr std::size_t kBurst = 4096;
// Batch size of the batch API run.
constexpr std::size_t kBatch = 64;

Message data_message() { return Message::make(kData, {0, 1, 2, 3, 4, 5, 6}); }
Message control_message(std::uint32_t label, std::uint64_t v = 0) { return Message::make(label, {v}); }

[[noreturn]] void die_status(const char* what, Status s) {
    std::fprintf(stderr, "channel_bench[%d]: %s: %s\n", static_cast<int>(::getpid()), what, ipc::to_string(s));
    ::_exit(113);
}

// ---------------------------------------------------------------------------
// The bare SPSC ring: the throughput floor.
//
// Written exactly like ipc::Channel's SPSC path, minus what makes a channel a
// channel (closed flag, waiter check, index validation): a 64-byte slot copied
// in and out with memcpy, head and tail on their own cache lines, each side
// keeping its own index and a cached copy of the peer's, and the peer's index
// read from shared memory only when the cache says full (sender) or empty
// (receiver), in an out-of-line refresh as in libipc.

class BareRing {
public:
    struct alignas(64) Line {
        std::atomic<std::uint64_t> value{0};
    };
    struct Segment {
        Line tail;
        Line head;
        Message slots[kCapacity];
    };

    explicit BareRing(Segment* seg) : seg_(seg), mask_(kCapacity - 1) {}

    bool try_send(const Message& m) noexcept {
        std::uint64_t t = send_.own;
        if (t - send_.other > mask_) [[unlikely]] {
            if (!refresh_head()) return false;
        }
        std::memcpy(static_cast<void*>(&seg_->slots[t & mask_]), &m, sizeof(Message));
        send_.own = t + 1;
        // Publishes the slot; pairs with the acquire in refresh_tail().
        seg_->tail.value.store(t + 1, std::memory_order_release);
        return true;
    }

    bool try_recv(Message& out) noexcept {
        std::uint64_t h = recv_.own;
        if (recv_.other - h - 1 > mask_) [[unlikely]] {
            if (!refresh_tail()) return false;
        }
        std::memcpy(&out, &seg_->slots[h & mask_], sizeof(Message));
        recv_.own = h + 1;
        // Frees the slot after the copy; pairs with the acquire in refresh_head().
        seg_->head.value.store(h + 1, std::memory_order_release);
        return true;
    }

private:
    [[gnu::noinline]] bool refresh_head() noexcept {
        send_.other = seg_->head.value.load(std::memory_order_acquire);
        return send_.own - send_.other <= mask_;
    }
    [[gnu::noinline]] bool refresh_tail() noexcept {
        recv_.other = seg_->tail.value.load(std::memory_order_acquire);
        return recv_.other != recv_.own;
    }

    Segment* seg_;
    std::uint64_t mask_;  // a member, as in the channel handle
    struct alignas(64) Side {
        std::uint64_t own = 0;
        std::uint64_t other = 0;
    };
    Side send_;
    Side recv_;
};

// ---------------------------------------------------------------------------
// Transports. Each is one direction of a link: send() and recv() return once
// the message is handed over / copied out (spinning or sleeping as the
// transport does). A round trip uses two; a throughput run one.

// ipc::Channel through its blocking API (adaptive spin, then futex sleep).
struct ChannelQ {
    ipc::Channel ch;
    void send(const Message& m) noexcept {
        if (Status s = ch.send(m); s != Status::ok) die_status("channel send", s);
    }
    void recv(Message& m) noexcept {
        if (Status s = ch.recv(m); s != Status::ok) die_status("channel recv", s);
    }
};

// ipc::Channel through try_send/try_recv in a spin loop: nobody ever sleeps.
struct ChannelSpinQ {
    ipc::Channel ch;
    void send(const Message& m) noexcept {
        for (bench::Backoff backoff;; backoff()) {
            const Status s = ch.try_send(m);
            if (s == Status::ok) [[likely]] return;
            if (s != Status::would_block) die_status("channel try_send", s);
        }
    }
    void recv(Message& m) noexcept {
        for (bench::Backoff backoff;; backoff()) {
            const Status s = ch.try_recv(m);
            if (s == Status::ok) [[likely]] return;
            if (s != Status::would_block) die_status("channel try_recv", s);
        }
    }
};

// ipc::Channel through try_send_batch/try_recv_batch in a spin loop.
struct ChannelBatchQ {
    static constexpr bool batched = true;
    ipc::Channel ch;
    void send_batch(std::span<const Message> msgs) noexcept {
        for (bench::Backoff backoff;; backoff()) {
            const ipc::BatchResult r = ch.try_send_batch(msgs);
            if (r.status != Status::ok && r.status != Status::would_block) die_status("try_send_batch", r.status);
            msgs = msgs.subspan(r.count);
            if (msgs.empty()) return;
        }
    }
    std::size_t recv_batch(std::span<Message> out) noexcept {
        for (bench::Backoff backoff;; backoff()) {
            const ipc::BatchResult r = ch.try_recv_batch(out);
            if (r.status == Status::ok) [[likely]] return r.count;
            if (r.status != Status::would_block) die_status("try_recv_batch", r.status);
        }
    }
    void send(const Message& m) noexcept { send_batch({&m, 1}); }
};

// The bare ring, spinning exactly like ChannelSpinQ.
struct BareRingQ {
    BareRing ring;
    void send(const Message& m) noexcept {
        for (bench::Backoff backoff; !ring.try_send(m); backoff()) {
        }
    }
    void recv(Message& m) noexcept {
        for (bench::Backoff backoff; !ring.try_recv(m); backoff()) {
        }
    }
};

// A pipe or one direction of a socketpair: one write() and one read() of 64
// bytes per message (pipe writes of <= PIPE_BUF bytes are atomic, and a
// SOCK_SEQPACKET read returns one record, so messages never split).
struct FdQ {
    int wfd = -1;
    int rfd = -1;
    void send(const Message& m) noexcept {
        for (;;) {
            const ssize_t n = ::write(wfd, &m, sizeof m);
            if (n == static_cast<ssize_t>(sizeof m)) return;
            if (n < 0 && errno == EINTR) continue;
            die("write");
        }
    }
    void recv(Message& m) noexcept {
        std::size_t got = 0;
        while (got < sizeof m) {
            const ssize_t n = ::read(rfd, reinterpret_cast<char*>(&m) + got, sizeof m - got);
            if (n > 0) {
                got += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            die(n == 0 ? "read: peer closed" : "read");
        }
    }
};

// An eventfd doorbell plus a one-message shared buffer (round trips only:
// the buffer holds one message in flight).
struct EventfdQ {
    struct alignas(64) Box {
        Message msg;
    };
    int efd = -1;
    Box* box = nullptr;
    void send(const Message& m) noexcept {
        std::memcpy(static_cast<void*>(&box->msg), &m, sizeof m);
        const std::uint64_t one = 1;
        // write(2) and read(2) on the eventfd are the barriers that order the
        // buffer between the processes.
        while (::write(efd, &one, sizeof one) != sizeof one)
            if (errno != EINTR) die("eventfd write");
    }
    void recv(Message& m) noexcept {
        std::uint64_t v;
        while (::read(efd, &v, sizeof v) != sizeof v)
            if (errno != EINTR) die("eventfd read");
        std::memcpy(&m, &box->msg, sizeof m);
    }
};

struct PosixMqQ {
    mqd_t q = -1;
    void send(const Message& m) noexcept {
        while (::mq_send(q, reinterpret_cast<const char*>(&m), sizeof m, 0) != 0)
            if (errno != EINTR) die("mq_send");
    }
    void recv(Message& m) noexcept {
        for (;;) {
            const ssize_t n = ::mq_receive(q, reinterpret_cast<char*>(&m), sizeof m, nullptr);
            if (n == static_cast<ssize_t>(sizeof m)) return;
            if (n < 0 && errno == EINTR) continue;
            die("mq_receive");
        }
    }
};

struct BoostMqQ {
    boost::interprocess::message_queue* q = nullptr;
    void send(const Message& m) { q->send(&m, sizeof m, 0); }
    void recv(Message& m) {
        boost::interprocess::message_queue::size_type n;
        unsigned prio;
        q->receive(&m, sizeof m, n, prio);
        if (n != sizeof m) die("boost message_queue: short message", 0);
    }
};

// Floor for spinning round trips: one cache line per direction; word 0 is a
// sequence number the receiver spins on (in place of the tag), words 1..7 are
// the message registers. One line moves per hop, nothing else.
struct FlagQ {
    struct alignas(64) Line {
        std::atomic<std::uint64_t> seq{0};
        std::uint64_t words[7];
    };
    Line* line = nullptr;
    std::uint64_t n = 0;  // messages through this direction, as this process saw them
    void send(const Message& m) noexcept {
        std::memcpy(line->words, m.mr.data(), sizeof line->words);
        // Publishes the words; pairs with the acquire in recv().
        line->seq.store(++n, std::memory_order_release);
    }
    void recv(Message& m) noexcept {
        for (bench::Backoff backoff; line->seq.load(std::memory_order_acquire) != n + 1; backoff()) {
        }
        ++n;
        std::memcpy(m.mr.data(), line->words, sizeof line->words);
        // The label does not travel; round_trip() marks a stop in mr[6] too.
        m.tag = Message::make_tag(kData, 7);
    }
};

// Floor for blocking round trips: a shared futex word per direction and a
// one-message buffer; the receiver always sleeps in FUTEX_WAIT, the sender
// always calls FUTEX_WAKE (no private flag: the peer is another process).
struct FutexQ {
    struct alignas(64) Line {
        std::atomic<std::uint32_t> word{0};
        alignas(64) Message msg;
    };
    Line* line = nullptr;
    std::uint32_t n = 0;
    void send(const Message& m) noexcept {
        std::memcpy(static_cast<void*>(&line->msg), &m, sizeof m);
        // Publishes msg; pairs with the acquire in recv().
        line->word.store(++n, std::memory_order_release);
        bench::futex_wake(line->word, 1);
    }
    void recv(Message& m) noexcept {
        for (;;) {
            const std::uint32_t v = line->word.load(std::memory_order_acquire);
            if (v == n + 1) break;
            bench::futex_wait(line->word, v);
        }
        ++n;
        std::memcpy(&m, &line->msg, sizeof m);
    }
};

// ---------------------------------------------------------------------------
// Set-up of each transport. Named objects are unlinked as soon as both ends
// hold them (the child inherits them through fork), so nothing is left
// behind even if the run is killed.

// spin_limit < 0: the library's default (set_spin is not called).
ipc::Channel make_channel(ipc::ChannelKind kind, std::uint32_t capacity, std::int64_t spin_limit_ns = -1) {
    ipc::Channel ch = ipc::Channel::create_anonymous({.kind = kind, .capacity = capacity});
    if (spin_limit_ns >= 0) ch.set_spin(std::chrono::nanoseconds(spin_limit_ns));
    return ch;
}

struct Fds {
    std::vector<int> fds;
    ~Fds() {
        for (int fd : fds) ::close(fd);
    }
    FdQ pipe() {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) die("pipe2");
        fds.insert(fds.end(), {p[0], p[1]});
        return {p[1], p[0]};
    }
    // Both directions of one socketpair.
    std::pair<FdQ, FdQ> socketpair() {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
        fds.insert(fds.end(), {sv[0], sv[1]});
        return {FdQ{sv[0], sv[1]}, FdQ{sv[1], sv[0]}};
    }
    int eventfd() {
        const int fd = ::eventfd(0, EFD_CLOEXEC);
        if (fd < 0) die("eventfd");
        fds.push_back(fd);
        return fd;
    }
};

class PosixMqs {
public:
    ~PosixMqs() {
        for (mqd_t q : qs_) ::mq_close(q);
    }
    PosixMqQ make(long depth) {
        const std::string name = "/ipc-bench-" + std::to_string(::getpid()) + "-" + std::to_string(qs_.size());
        mq_attr attr{};
        attr.mq_maxmsg = depth;
        attr.mq_msgsize = sizeof(Message);
        const mqd_t q = ::mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
        if (q == static_cast<mqd_t>(-1)) die("mq_open (fs.mqueue.msg_max caps the depth)");
        ::mq_unlink(name.c_str());
        qs_.push_back(q);
        return {q};
    }

private:
    std::vector<mqd_t> qs_;
};

class BoostMqs {
public:
    BoostMqQ make(std::size_t depth) {
        namespace bip = boost::interprocess;
        const std::string name = "ipc-bench-" + std::to_string(::getpid()) + "-" + std::to_string(qs_.size());
        bip::message_queue::remove(name.c_str());
        qs_.push_back(std::make_unique<bip::message_queue>(bip::create_only, name.c_str(), depth, sizeof(Message)));
        bip::message_queue::remove(name.c_str());
        return {qs_.back().get()};
    }

private:
    std::vector<std::unique_ptr<boost::interprocess::message_queue>> qs_;
};

// ---------------------------------------------------------------------------
// Round trip: parent -> child on `ping`, child -> parent on `pong`.

template <class Q>
void round_trip(benchmark::State& state, Placement where, Q& ping, Q& pong) {
    bench::PinToCpu pin(0);
    Child child([&] {
        Message m;
        for (;;) {
            ping.recv(m);
            bench::consume_bytes(m);
            if (m.label() == kStop || m.mr[6] == ~0ull) return;
            pong.send(m);
        }
    }, where == Placement::split ? 1 : 0);
    Message m = data_message();
    Message r;
    std::uint64_t i = 0;
    auto once = [&] {
        m.mr[0] = ++i;
        ping.send(m);
        pong.recv(r);
        bench::consume_bytes(r);
        if (r.mr[0] != i) [[unlikely]]
            die("round trip: wrong echo", 0);
    };
    for (int w = 0; w < 64; ++w) once();  // the child is up and the pages are mapped
    for (auto _ : state) once();
    m = control_message(kStop);
    m.mr[6] = ~0ull;  // FlagQ carries no label
    ping.send(m);
    if (!child.join()) state.SkipWithError("echo child failed");
}

// ---------------------------------------------------------------------------
// Throughput, one producer (the parent) and one consumer (the child).

struct alignas(64) Progress {
    std::atomic<std::uint64_t> count{0};  // messages received at the last sync
    std::uint64_t sum = 0;                // sum of their mr[0], written before count
};

template <class Q>
concept Batched = requires { Q::batched; };

template <class Q>
void consume(Q& q, Progress& p) {
    std::uint64_t count = 0, sum = 0;
    std::array<Message, kBatch> buf;
    for (;;) {
        std::size_t n = 1;
        if constexpr (Batched<Q>)
            n = q.recv_batch(buf);
        else
            q.recv(buf[0]);
        for (std::size_t i = 0; i < n; ++i) {
            const Message& m = buf[i];
            bench::consume_bytes(m);
            if (m.label() == kData) [[likely]] {
                ++count;
                sum += m.mr[0];
            } else if (m.label() == kSync) {
                p.sum = sum;
                // Publishes sum; pairs with the acquire in the producer's wait.
                p.count.store(count, std::memory_order_release);
            } else {
                return;
            }
        }
    }
}

// Sum of k % kBatch for k in [0, n): what the consumer must report.
std::uint64_t expected_sum(std::uint64_t n) {
    const std::uint64_t full = n / kBatch, rest = n % kBatch;
    return full * (kBatch * (kBatch - 1) / 2) + rest * (rest - 1) / 2 * (rest != 0);
}

template <class Q>
void throughput(benchmark::State& state, Placement where, Q& q) {
    Shared<Progress> progress;
    bench::PinToCpu pin(0);
    Child child([&] { consume(q, *progress); }, where == Placement::split ? 1 : 0);

    // The producer sends prepared messages (message k carries k % kBatch)
    // and never writes a message just before sending it: a store followed by
    // the wider loads of the 64-byte copy cannot be store-forwarded, and the
    // load then waits for the store buffer to drain, including the previous
    // index store still waiting for its cache line. That stall, not the ring,
    // would set the pace (and it hits the bare ring the same way).
    std::array<Message, kBatch> msgs;
    for (std::size_t k = 0; k < kBatch; ++k) msgs[k] = Message::make(kData, {k, 1, 2, 3, 4, 5, 6});
    std::uint64_t seq = 0;
    auto produce = [&](std::size_t n) {
        if constexpr (Batched<Q>) {
            for (std::size_t done = 0; done < n; done += kBatch) q.send_batch(msgs);
        } else {
            for (std::size_t i = 0; i < n; ++i) q.send(msgs[i % kBatch]);
        }
        seq += n;
    };
    auto sync = [&] {
        q.send(control_message(kSync));
        // Acquire pairs with the release in consume().
        bench::wait_until([&] { return progress->count.load(std::memory_order_acquire) == seq; });
    };

    produce(2 * kBurst);  // warm up: child running, every slot touched
    sync();
    auto prev = Clock::now();
    benchmark::IterationCount it = 0;
    for (auto _ : state) {
        produce(kBurst);
        if (++it == state.max_iterations) sync();  // the clock stops at the last delivery
        const auto now = Clock::now();
        state.SetIterationTime(std::chrono::duration<double>(now - prev).count());
        prev = now;
    }
    q.send(control_message(kStop));
    if (!child.join()) return state.SkipWithError("consumer child failed");
    if (progress->count.load() != seq || progress->sum != expected_sum(seq))
        return state.SkipWithError("consumer lost or duplicated messages");
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kBurst));
}

// ---------------------------------------------------------------------------
// Throughput, P producer processes and C consumer processes on one MPMC
// channel through the blocking API. The parent only coordinates and sleeps:
// it starts everyone at once, polls the consumers' progress between
// iterations and waits for them to exit after the last.

struct alignas(64) Padded {
    std::atomic<std::uint64_t> v{0};
};
struct Coordination {
    alignas(64) std::atomic<std::uint32_t> go{0};
    alignas(64) std::atomic<std::uint32_t> producers_done{0};
    alignas(64) std::atomic<std::uint64_t> sum{0};
    std::atomic<std::uint64_t> count{0};
    Padded progress[8];
};

constexpr std::size_t kMpmcBurst = 16384;

void mpmc_processes(benchmark::State& state, int producers, int consumers) {
    bench::Watchdog wd("mpmc");
    ipc::Channel ch = make_channel(ipc::ChannelKind::mpmc, kCapacity);
    Shared<Coordination> co;
    const std::uint64_t total = static_cast<std::uint64_t>(state.max_iterations) * kMpmcBurst;

    auto wait_go = [&] {
        while (co->go.load(std::memory_order_acquire) == 0) bench::futex_wait(co->go, 0);
    };
    std::vector<Child> children;
    for (int c = 0; c < consumers; ++c) {
        children.emplace_back([&, c] {
            wait_go();
            std::uint64_t count = 0, sum = 0;
            Message m;
            for (;;) {
                if (Status s = ch.recv(m); s != Status::ok) die_status("mpmc recv", s);
                bench::consume_bytes(m);
                if (m.label() != kData) break;
                ++count;
                sum += m.mr[0];
                // Relaxed: a progress hint for the parent's clock only.
                if ((count & 255) == 0) co->progress[c].v.store(count, std::memory_order_relaxed);
            }
            co->progress[c].v.store(count, std::memory_order_relaxed);
            co->sum.fetch_add(sum, std::memory_order_relaxed);
            co->count.fetch_add(count, std::memory_order_relaxed);
        });
    }
    for (int p = 0; p < producers; ++p) {
        children.emplace_back([&, p] {
            wait_go();
            Message m = data_message();
            for (std::uint64_t v = static_cast<std::uint64_t>(p); v < total; v += static_cast<std::uint64_t>(producers)) {
                m.mr[0] = v;
                if (Status s = ch.send(m); s != Status::ok) die_status("mpmc send", s);
            }
            // The last producer out sends one stop per consumer. Every data
            // message was published before the stops, and consumers take
            // indices in order, so a consumer that takes a stop leaves no
            // data message unclaimed.
            if (co->producers_done.fetch_add(1, std::memory_order_acq_rel) + 1 == static_cast<std::uint32_t>(producers))
                for (int c = 0; c < consumers; ++c)
                    if (Status s = ch.send(control_message(kStop)); s != Status::ok) die_status("mpmc stop", s);
        });
    }

    auto received = [&] {
        std::uint64_t n = 0;
        for (int c = 0; c < consumers; ++c) n += co->progress[c].v.load(std::memory_order_relaxed);
        return n;
    };
    bool ok = true;
    auto prev = Clock::now();
    co->go.store(1, std::memory_order_release);
    bench::futex_wake(co->go, INT32_MAX);
    benchmark::IterationCount it = 0;
    for (auto _ : state) {
        if (++it < state.max_iterations) {
            // Sleep-poll: the parent must not take a CPU from the workers.
            const std::uint64_t want = static_cast<std::uint64_t>(it) * kMpmcBurst;
            while (received() < want) ::usleep(500);
        } else {
            for (int c = 0; c < consumers; ++c) ok = children[static_cast<std::size_t>(c)].join() && ok;
        }
        const auto now = Clock::now();
        state.SetIterationTime(std::chrono::duration<double>(now - prev).count());
        prev = now;
    }
    for (auto& c : children) ok = c.join() && ok;
    if (!ok) return state.SkipWithError("a producer or consumer child failed");
    if (co->count.load() != total || co->sum.load() != total * (total - 1) / 2)
        return state.SkipWithError("consumers lost or duplicated messages");
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kMpmcBurst));
}

// ---------------------------------------------------------------------------
// The benchmarks

// spin_limit_ns: -1 default spin, 0 sleep at once (set_spin(0)), else set_spin(n).
void rt_channel(benchmark::State& state, Placement where, std::int64_t spin_limit_ns) {
    bench::Watchdog wd("rt/ipc");
    ChannelQ ping{make_channel(ipc::ChannelKind::spsc, 64, spin_limit_ns)};
    ChannelQ pong{make_channel(ipc::ChannelKind::spsc, 64, spin_limit_ns)};
    round_trip(state, where, ping, pong);
}

void rt_pipe(benchmark::State& state, Placement where) {
    bench::Watchdog wd("rt/pipe");
    Fds fds;
    FdQ ping = fds.pipe(), pong = fds.pipe();
    round_trip(state, where, ping, pong);
}

void rt_socket(benchmark::State& state, Placement where) {
    bench::Watchdog wd("rt/unix");
    Fds fds;
    auto [ping, pong] = fds.socketpair();
    round_trip(state, where, ping, pong);
}

void rt_eventfd(benchmark::State& state, Placement where) {
    bench::Watchdog wd("rt/eventfd");
    Fds fds;
    Shared<std::array<EventfdQ::Box, 2>> boxes;
    EventfdQ ping{fds.eventfd(), &(*boxes)[0]}, pong{fds.eventfd(), &(*boxes)[1]};
    round_trip(state, where, ping, pong);
}

void rt_posix_mq(benchmark::State& state, Placement where) {
    bench::Watchdog wd("rt/posix_mq");
    PosixMqs mqs;
    PosixMqQ ping = mqs.make(10), pong = mqs.make(10);
    round_trip(state, where, ping, pong);
}

void rt_boost_mq(benchmark::State& state, Placement where) {
    bench::Watchdog wd("rt/boost_mq");
    BoostMqs mqs;
    BoostMqQ ping = mqs.make(64), pong = mqs.make(64);
    round_trip(state, where, ping, pong);
}

void rt_flag(benchmark::State& state, Placement where) {
    bench::Watchdog wd("rt/floor_cacheline");
    Shared<std::array<FlagQ::Line, 2>> lines;
    FlagQ ping{&(*lines)[0]}, pong{&(*lines)[1]};
    round_trip(state, where, ping, pong);
}

void rt_futex(benchmark::State& state, Placement where) {
    bench::Watchdog wd("rt/floor_futex");
    Shared<std::array<FutexQ::Line, 2>> lines;
    FutexQ ping{&(*lines)[0]}, pong{&(*lines)[1]};
    round_trip(state, where, ping, pong);
}

void tput_channel_spin(benchmark::State& state, Placement where, ipc::ChannelKind kind) {
    bench::Watchdog wd("tput/ipc");
    ChannelSpinQ q{make_channel(kind, kCapacity)};
    throughput(state, where, q);
}

void tput_channel_blocking(benchmark::State& state, Placement where) {
    bench::Watchdog wd("tput/ipc_blocking");
    ChannelQ q{make_channel(ipc::ChannelKind::spsc, kCapacity)};
    throughput(state, where, q);
}

void tput_channel_batch(benchmark::State& state, Placement where) {
    bench::Watchdog wd("tput/ipc_batch");
    ChannelBatchQ q{make_channel(ipc::ChannelKind::spsc, kCapacity)};
    throughput(state, where, q);
}

void tput_bare_ring(benchmark::State& state, Placement where) {
    bench::Watchdog wd("tput/bare_ring");
    Shared<BareRing::Segment> seg;
    BareRingQ q{BareRing(seg.get())};
    throughput(state, where, q);
}

void tput_pipe(benchmark::State& state, Placement where) {
    bench::Watchdog wd("tput/pipe");
    Fds fds;
    FdQ q = fds.pipe();
    throughput(state, where, q);
}

void tput_socket(benchmark::State& state, Placement where) {
    bench::Watchdog wd("tput/unix");
    Fds fds;
    FdQ q = fds.socketpair().first;
    throughput(state, where, q);
}

void tput_posix_mq(benchmark::State& state, Placement where) {
    bench::Watchdog wd("tput/posix_mq");
    PosixMqs mqs;
    PosixMqQ q = mqs.make(10);
    throughput(state, where, q);
}

void tput_boost_mq(benchmark::State& state, Placement where) {
    bench::Watchdog wd("tput/boost_mq");
    BoostMqs mqs;
    BoostMqQ q = mqs.make(kCapacity);
    throughput(state, where, q);
}

}  // namespace

int main(int argc, char** argv) {
    using bench::add;
    using K = ipc::ChannelKind;
    constexpr auto split = Placement::split, same = Placement::same;

    const char* rt = "Round trip, parent CPU 0 <-> child CPU 1";
    add("rt/ipc_spin", {rt, true, "", "ipc SPSC send/recv, default spin"},
        [](auto& s) { rt_channel(s, split, -1); });
    add("rt/ipc_blocking", {rt, true, "", "ipc SPSC send/recv, set_spin(0): both sleep"},
        [](auto& s) { rt_channel(s, split, 0); });
    add("rt/ipc_spin_100us", {rt, true, "rt/ipc_spin", "ipc SPSC send/recv, set_spin(100us)"},
        [](auto& s) { rt_channel(s, split, 100'000); });
    add("rt/floor_cacheline", {rt, true, "rt/ipc_spin", "bare spinning cache-line ping-pong"},
        [](auto& s) { rt_flag(s, split); });
    add("rt/floor_futex", {rt, true, "rt/ipc_blocking", "bare futex ping-pong"},
        [](auto& s) { rt_futex(s, split); });
    add("rt/pipe", {rt, true, "rt/ipc_spin", "two pipes"}, [](auto& s) { rt_pipe(s, split); });
    add("rt/unix_seqpacket", {rt, true, "rt/ipc_spin", "socketpair(SOCK_SEQPACKET)"},
        [](auto& s) { rt_socket(s, split); });
    add("rt/eventfd", {rt, true, "rt/ipc_spin", "two eventfds + shared buffers"},
        [](auto& s) { rt_eventfd(s, split); });
    add("rt/posix_mq", {rt, true, "rt/ipc_spin", "two POSIX mqueues"}, [](auto& s) { rt_posix_mq(s, split); });
    add("rt/boost_mq", {rt, true, "rt/ipc_spin", "two boost message_queues"},
        [](auto& s) { rt_boost_mq(s, split); });

    const char* tp = "Throughput, parent CPU 0 -> child CPU 1";
    add("tput/ipc_spsc", {tp, false, "", "ipc SPSC cap 4096, try_send/try_recv spin"},
        [](auto& s) { tput_channel_spin(s, split, K::spsc); });
    add("tput/bare_ring", {tp, false, "tput/ipc_spsc", "bare SPSC ring cap 4096, spin"},
        [](auto& s) { tput_bare_ring(s, split); });
    add("tput/ipc_spsc_batch64", {tp, false, "tput/ipc_spsc", "ipc SPSC, try_*_batch of 64, spin"},
        [](auto& s) { tput_channel_batch(s, split); });
    add("tput/ipc_spsc_blocking", {tp, false, "tput/ipc_spsc", "ipc SPSC, send/recv (default spin)"},
        [](auto& s) { tput_channel_blocking(s, split); });
    add("tput/ipc_mpmc_spin", {tp, false, "tput/ipc_spsc", "ipc MPMC cap 4096, try_send/try_recv spin"},
        [](auto& s) { tput_channel_spin(s, split, K::mpmc); });
    add("tput/pipe", {tp, false, "tput/ipc_spsc", "pipe, one write/read per message"},
        [](auto& s) { tput_pipe(s, split); });
    add("tput/unix_seqpacket", {tp, false, "tput/ipc_spsc", "socketpair(SOCK_SEQPACKET)"},
        [](auto& s) { tput_socket(s, split); });
    add("tput/posix_mq", {tp, false, "tput/ipc_spsc", "POSIX mqueue, depth 10"},
        [](auto& s) { tput_posix_mq(s, split); });
    add("tput/boost_mq", {tp, false, "tput/ipc_spsc", "boost message_queue, depth 4096"},
        [](auto& s) { tput_boost_mq(s, split); });

    const char* mp = "Throughput, MPMC cap 4096, P x C processes, send/recv, unpinned";
    for (int n : {1, 2, 4})
        add("tput/ipc_mpmc_" + std::to_string(n) + "x" + std::to_string(n),
            {mp, false, "tput/ipc_spsc", std::to_string(n) + " producer(s) x " + std::to_string(n) + " consumer(s)"},
            [n](auto& s) { mpmc_processes(s, n, n); });

    const char* pin = "Pinned: parent and child both on CPU 0";
    add("pinned/rt/ipc_spin", {pin, true, "", "ipc SPSC round trip, default spin"},
        [](auto& s) { rt_channel(s, same, -1); });
    add("pinned/rt/ipc_blocking", {pin, true, "pinned/rt/ipc_spin", "ipc SPSC round trip, set_spin(0)"},
        [](auto& s) { rt_channel(s, same, 0); });
    add("pinned/rt/pipe", {pin, true, "pinned/rt/ipc_spin", "pipe round trip"}, [](auto& s) { rt_pipe(s, same); });
    add("pinned/tput/ipc_spsc_blocking", {pin, false, "", "ipc SPSC cap 4096, send/recv (default spin)"},
        [](auto& s) { tput_channel_blocking(s, same); });
    add("pinned/tput/pipe", {pin, false, "pinned/tput/ipc_spsc_blocking", "pipe throughput"},
        [](auto& s) { tput_pipe(s, same); });

    // Colour as Google Benchmark would choose it (a custom reporter does not
    // get its --benchmark_color handling).
    bool color = ::isatty(STDOUT_FILENO);
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--benchmark_color=false") color = false;
        if (a == "--benchmark_color=true") color = true;
    }
    using T = bench::Target;
    bench::RatioReporter reporter({
        {"SPSC tput vs bare SPSC ring", "tput/ipc_spsc", "tput/bare_ring", T::at_least, 0.6},
        {"SPSC tput vs pipe", "tput/ipc_spsc", "tput/pipe", T::at_least, 40},
        {"SPSC tput vs boost message_queue", "tput/ipc_spsc", "tput/boost_mq", T::at_least, 25},
        {"MPMC 1x1 tput (spin) vs SPSC", "tput/ipc_mpmc_spin", "tput/ipc_spsc", T::at_least, 0.25},
        {"spinning round trip vs bare cache-line ping-pong", "rt/ipc_spin", "rt/floor_cacheline", T::at_most, 1.5},
        {"spinning round trip vs pipe", "rt/ipc_spin", "rt/pipe", T::below, 0.1},
        {"blocking round trip vs bare futex ping-pong", "rt/ipc_blocking", "rt/floor_futex", T::at_most, 1.3},
        {"pinned: spinning round trip vs pipe (time)", "pinned/rt/ipc_spin", "pinned/rt/pipe", T::at_most, 1.0},
        {"pinned: blocking round trip vs pipe (time)", "pinned/rt/ipc_blocking", "pinned/rt/pipe", T::at_most, 1.0},
        {"pinned: send/recv tput vs pipe (rate)", "pinned/tput/ipc_spsc_blocking", "pinned/tput/pipe", T::at_least,
         1.0},
    }, color ? benchmark::ConsoleReporter::OO_ColorTabular : benchmark::ConsoleReporter::OO_Tabular);

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
