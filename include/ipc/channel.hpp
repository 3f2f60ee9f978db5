// ipc/channel.hpp - a bounded channel of ipc::Message in shared memory.
//
// A Channel is a per-process handle on a ring of message slots that lives in a
// shared-memory segment. Any number of processes may hold handles on the same
// channel. It behaves like a buffered Go channel:
//
//   send / recv              block until done or the channel is closed
//   try_send / try_recv      never block
//   send_until / recv_until  block until an absolute CLOCK_MONOTONIC deadline
//   send_for / recv_for      the same with a relative timeout
//   *_batch                  move many messages with one index update
//   close                    senders then fail; receivers drain, then fail
//
// Two ring algorithms, chosen at creation (ChannelOptions::kind):
//
//   spsc  one sending handle and one receiving handle at a time (across all
//         processes). Head and tail on their own cache lines, each side
//         caching both indices: the fastest choice, and the one to use with
//         an untrusted peer (see "Untrusted peers"). A handle may take over
//         a role from another only once that handle has stopped using it.
//   mpmc  any number of concurrent senders and receivers, any process or
//         thread. A sequence number per slot (Vyukov's bounded queue).
//
// Life of a channel:
//
//   state             send / try_send          recv / try_recv
//   ----------------  -----------------------  ------------------------------
//   open, empty       ok                       blocks / would_block
//   open, full        blocks / would_block     ok
//   closed, buffered  closed                   ok (drains what was buffered)
//   closed, drained   closed                   closed
//
// A send that races with close() may succeed or fail with `closed`; if it
// succeeds its message is buffered and later receivers get it.
//
// Blocking costs nothing when nobody sleeps: a waiting side spins for a
// bounded, adaptive time, yields the CPU once, then announces itself and
// sleeps on a shared futex word in the segment. A side that makes progress
// issues FUTEX_WAKE only if a sleeper has announced itself, so uncontended
// sends and receives make no system call. docs/channel-protocol.md gives the
// protocol, its memory orderings and why no wakeup is lost.
//
// Threads: the blocking and non-blocking calls may be made from any thread,
// within the spsc contract (one sender and one receiver at a time). close()
// and stats() may be called from any thread of any process at any time.
//
// Errors: setup calls (create, open, from_fd, ...) throw std::system_error
// (see ipc/error.hpp). The data path never throws; it returns ipc::Status.
//
// Untrusted peers: a slot is copied out before it is used, every index read
// from shared memory is checked against the capacity, and slots are addressed
// modulo the capacity, so a peer that scribbles on the segment can corrupt
// only the messages of this channel; calls then return Status::corrupted.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "ipc/error.hpp"
#include "ipc/mapping.hpp"
#include "ipc/message.hpp"
#include "ipc/shm_layout.hpp"

namespace ipc {

// The result of a data-path call.
enum class [[nodiscard]] Status : std::uint8_t {
    ok,           // done
    would_block,  // try_*: the ring is full (send) or empty (recv)
    timed_out,    // *_until / *_for: the deadline passed first
    closed,       // send: the channel is closed; recv: closed and drained
    corrupted,    // an index in shared memory is out of range: a peer broke the ring
};

// "ok", "would block", "timed out", "closed", "corrupted".
const char* to_string(Status s) noexcept;

enum class ChannelKind : std::uint32_t { spsc = shm::kind_spsc, mpmc = shm::kind_mpmc };

struct ChannelOptions {
    ChannelKind kind = ChannelKind::spsc;
    // Messages the channel buffers, 1 to 2^24 (Go's make(chan T, n)).
    // Storage is rounded up to a power of two; powers of two are the
    // fastest for MPMC, which otherwise reads the consumers' index on send.
    std::uint32_t capacity = 256;
    // Permission bits of a named segment (umask does not apply).
    mode_t mode = 0600;
};

// A snapshot for tools. Fields are read one by one without a lock, so they
// may be mutually inconsistent while the channel is in use.
struct ChannelStats {
    ChannelKind kind;
    std::uint32_t capacity;
    std::uint64_t depth;               // messages buffered
    std::uint32_t sleeping_senders;    // announced futex sleepers
    std::uint32_t sleeping_receivers;
    bool closed;
};

// The result of a batch call: how many messages moved, and why it stopped.
struct [[nodiscard]] BatchResult {
    Status status;
    std::size_t count;
};

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC on Linux
using Deadline = Clock::time_point;

namespace detail {
// Process-wide: true when membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) is
// registered, so the wakers' fast path can use a compiler-only barrier.
extern std::atomic<bool> asymmetric_barriers;

// The waker's half of the asymmetric Dekker barrier (see
// docs/channel-protocol.md): orders the waker's store of an index before its
// load of the waiter count. With membarrier available, a compiler barrier
// suffices because each sleeper issues membarrier() (heavy_barrier) between
// announcing itself and re-checking the ring. Without it, a full fence.
inline void light_barrier() noexcept {
    // Relaxed: the flag is set once per process before any channel exists.
    if (asymmetric_barriers.load(std::memory_order_relaxed)) [[likely]]
        std::atomic_signal_fence(std::memory_order_seq_cst);
    else
        std::atomic_thread_fence(std::memory_order_seq_cst);
}
}  // namespace detail

class Channel {
public:
    // --- Named channels (POSIX shared memory via Boost.Interprocess) --------
    //
    // A channel named NAME lives at /dev/shm/ipc.NAME. Names are 1 to 200
    // characters of [A-Za-z0-9._-] and do not start with '.'. Errors:
    // EEXIST (create), ENOENT (open), EACCES, ipc::errc::invalid_name,
    // ipc::errc::invalid_capacity, and the validation errors of from_fd().

    static Channel create(std::string_view name, const ChannelOptions& options = {});
    static Channel open(std::string_view name);
    // Opens NAME if it exists (ignoring `options`), else creates it. Safe to
    // race with other creators: exactly one initialises the segment.
    static Channel open_or_create(std::string_view name, const ChannelOptions& options = {});
    // Removes the name; handles already open keep working. Returns false if
    // no such channel existed. Throws on other errors (EACCES, invalid name).
    static bool remove(std::string_view name);
    // "/dev/shm/ipc." + name, after checking the name rules.
    static std::string shm_path(std::string_view name);

    // --- Anonymous channels (memfd) ------------------------------------------
    //
    // create_anonymous() makes a memfd sealed against shrinking and growing;
    // fd() returns it so it can be passed to another process (SCM_RIGHTS or
    // inheritance). from_fd() maps and validates a descriptor received that
    // way; it duplicates `fd`, so the caller keeps ownership of its copy.
    // Validation errors: errc::not_a_channel, version_mismatch, bad_geometry,
    // truncated, not_initialized.

    static Channel create_anonymous(const ChannelOptions& options = {});
    static Channel from_fd(int fd);

    // The descriptor behind the mapping (O_CLOEXEC), or -1 for none.
    int fd() const noexcept;

    // --- Channels inside a larger mapping ------------------------------------
    //
    // For protocols that put several channels in one segment (the ipcd
    // session memfd holds a request and a reply channel). `offset` must be a
    // multiple of 64 and the channel must fit inside the mapping.
    static Channel create_in(std::shared_ptr<Mapping> mapping, std::size_t offset,
                             const ChannelOptions& options);
    static Channel open_in(std::shared_ptr<Mapping> mapping, std::size_t offset);
    // Bytes a channel with these options occupies (64-byte aligned).
    static std::size_t bytes_needed(const ChannelOptions& options);

    Channel() = default;  // an empty handle; only assignment and valid() are allowed
    Channel(Channel&& other) noexcept;
    Channel& operator=(Channel&& other) noexcept;
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;
    ~Channel();

    bool valid() const noexcept { return ctl_ != nullptr; }
    ChannelKind kind() const noexcept { return static_cast<ChannelKind>(kind_); }
    std::uint32_t capacity() const noexcept { return static_cast<std::uint32_t>(cap_); }

    // --- Sending --------------------------------------------------------------

    // Never blocks. ok, would_block (full), closed, corrupted.
    Status try_send(const Message& m) noexcept;
    // Blocks while full. ok, closed, corrupted.
    Status send(const Message& m) noexcept { return send_slow(m, nullptr); }
    // Blocks while full, until `deadline`. ok, timed_out, closed, corrupted.
    Status send_until(const Message& m, Deadline deadline) noexcept;
    template <class Rep, class Period>
    Status send_for(const Message& m, std::chrono::duration<Rep, Period> timeout) noexcept {
        return send_until(m, Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout));
    }
    // Sends as many of `msgs` as fit now, in order, with one index update.
    // status: ok (all sent), would_block (count < size), closed, corrupted.
    BatchResult try_send_batch(std::span<const Message> msgs) noexcept;
    // Sends all of `msgs`, blocking while full. ok, or closed/corrupted with
    // the count sent before that.
    BatchResult send_batch(std::span<const Message> msgs) noexcept;

    // --- Receiving ------------------------------------------------------------

    // Never blocks. ok, would_block (empty), closed (closed and drained), corrupted.
    Status try_recv(Message& out) noexcept;
    // Blocks while empty. ok, closed, corrupted.
    Status recv(Message& out) noexcept { return recv_slow(out, nullptr); }
    Status recv_until(Message& out, Deadline deadline) noexcept;
    template <class Rep, class Period>
    Status recv_for(Message& out, std::chrono::duration<Rep, Period> timeout) noexcept {
        return recv_until(out, Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout));
    }
    // Receives up to out.size() messages that are buffered now.
    // ok (count >= 1), would_block, closed, corrupted.
    BatchResult try_recv_batch(std::span<Message> out) noexcept;
    // Blocks until at least one message is buffered, then takes up to
    // out.size(). ok (count >= 1), closed, corrupted.
    BatchResult recv_batch(std::span<Message> out) noexcept;
    BatchResult recv_batch_until(std::span<Message> out, Deadline deadline) noexcept;

    // --- Life -------------------------------------------------------------------

    // Closes the channel for every process and wakes every sleeper. Returns
    // true if this call closed it, false if it was already closed.
    bool close() noexcept;
    bool closed() const noexcept;
    ChannelStats stats() const noexcept;

    // Upper bound of the adaptive spin before sleeping (default 100 us,
    // above the ~30 us a cross-CPU wake costs on small VMs). The budget is
    // learned per handle side: it grows when spinning (or a short sleep)
    // would have caught the peer, and drops to 200 ns when the peer shares
    // our CPU. Spinning never outlasts a call's deadline. Zero makes
    // blocking calls sleep as soon as the ring is full or empty.
    void set_spin(std::chrono::nanoseconds limit) noexcept;

    // The segment this channel lives in.
    const std::shared_ptr<Mapping>& mapping() const noexcept { return mapping_; }
    // The mapped control block, for tools and protocol code.
    const shm::ChannelControl* control() const noexcept { return ctl_; }
    // For an event loop that sleeps on the receive side itself instead of in
    // recv() (ipcd arms an io_uring futex wait per session):
    //
    //   auto t = ch.prepare_recv_wait();
    //   if (!t.ready) { wait on ch.recv_futex() while it equals t.seq; }
    //   ch.finish_recv_wait();  // only after a prepare that returned !ready
    //   ... then try_recv() until would_block
    //
    // prepare_recv_wait() announces a sleeper (so senders will wake it) and
    // re-checks the ring; ready == true means a message or close is already
    // there and nothing was announced.
    // True if try_recv() would not return would_block right now (a message,
    // close or corruption is there). Takes nothing; for an event loop that
    // polls several channels before it sleeps. Receiver side only.
    bool readable() const noexcept;

    struct WaitTicket {
        bool ready;
        std::uint32_t seq;
    };
    WaitTicket prepare_recv_wait() noexcept;
    void finish_recv_wait() noexcept;
    // prepare_recv_wait() split in two, for a receiver that arms many
    // channels at once (ipcd going idle on many sessions) and so pays the
    // heavy barrier once instead of once per channel:
    //
    //   for each ch: ch.announce_recv_wait();
    //   ipc::heavy_barrier();
    //   for each ch: auto t = ch.check_recv_wait();  // as prepare_recv_wait()
    //
    // The barrier orders every announcement before every check, which is
    // all the per-channel argument needs (docs/channel-protocol.md).
    void announce_recv_wait() noexcept;
    WaitTicket check_recv_wait() noexcept;
    std::atomic<std::uint32_t>& recv_futex() noexcept { return ctl_->not_empty.seq; }

private:
    Status send_slow(const Message& m, const Deadline* deadline) noexcept;
    Status recv_slow(Message& out, const Deadline* deadline) noexcept;
    BatchResult recv_batch_slow(std::span<Message> out, const Deadline* deadline) noexcept;
    [[gnu::noinline]] void wake_receivers(std::uint32_t n) noexcept;
    [[gnu::noinline]] void wake_senders(std::uint32_t n) noexcept;
    Status mpmc_try_send(const Message& m) noexcept;
    Status mpmc_try_recv(Message& out) noexcept;
    Status spsc_refresh_head() noexcept;
    Status spsc_refresh_tail() noexcept;
    Status empty_status() noexcept;
    void attach(std::shared_ptr<Mapping> mapping, shm::ChannelControl* ctl) noexcept;

    std::shared_ptr<Mapping> mapping_;
    shm::ChannelControl* ctl_ = nullptr;
    std::byte* slots_ = nullptr;
    std::uint64_t cap_ = 0;    // capacity (messages buffered at most)
    std::uint64_t mask_ = 0;   // slot_count - 1: index & mask_ is the slot
    std::uint32_t shift_ = 0;  // log2(slot_count): index >> shift_ is the lap
    std::uint32_t kind_ = 0;
    std::atomic<std::uint32_t> spin_limit_ns_{100000};

    // Sender-side and receiver-side per-process caches, on separate lines so
    // one sending thread and one receiving thread can share a handle.
    //
    // spsc: own_index is this side's index as this handle last wrote it;
    // other_index the peer's as last read. Both are re-read from the segment
    // on every refresh (when other_index says full/empty), which is also how
    // a handle picks up its role: a new handle starts with own == other, so
    // its first call refreshes. The fast path never reads the segment's
    // copy of its own index.
    struct alignas(shm::cache_line) SideCache {
        std::uint64_t own_index = 0;
        std::uint64_t other_index = 0;
        std::atomic<std::uint32_t> spin_ns{2000};    // adaptive spin budget
    };
    SideCache send_side_;
    SideCache recv_side_;
};

// ---------------------------------------------------------------------------
// Fast paths. Guards first, then the commit point, then the wake check.

inline Status Channel::try_send(const Message& m) noexcept {
    if (kind_ != shm::kind_spsc) return mpmc_try_send(m);
    // Relaxed: closed is a one-way flag; a send racing close may succeed
    // (documented), and nothing else is read under it.
    if (ctl_->header.closed.load(std::memory_order_relaxed)) [[unlikely]]
        return Status::closed;
    // Our own index comes from the handle, not the segment: reading the
    // shared tail line would stall on every receiver refresh.
    std::uint64_t t = send_side_.own_index;
    if (t - send_side_.other_index >= cap_) [[unlikely]] {
        Status s = spsc_refresh_head();
        if (s != Status::ok) return s;
        t = send_side_.own_index;
    }
    // commit: from here the message is delivered.
    std::memcpy(static_cast<void*>(slots_ + (t & mask_) * sizeof(Message)), &m, sizeof(Message));
    send_side_.own_index = t + 1;
    // R1: publishes the slot; pairs with A2 in spsc_refresh_tail().
    ctl_->tail.value.store(t + 1, std::memory_order_release);
    detail::light_barrier();
    // Relaxed: ordered after the tail store by light_barrier() (asymmetric
    // Dekker with heavy_barrier() in the sleeper); see channel-protocol.md.
    if (ctl_->not_empty.waiters.load(std::memory_order_relaxed) != 0) [[unlikely]]
        wake_receivers(1);
    return Status::ok;
}

inline Status Channel::try_recv(Message& out) noexcept {
    if (kind_ != shm::kind_spsc) return mpmc_try_recv(out);
    std::uint64_t h = recv_side_.own_index;
    if (recv_side_.other_index - h - 1 >= cap_) [[unlikely]] {
        // The cached tail says empty (or this handle has not received yet).
        Status s = spsc_refresh_tail();
        if (s != Status::ok) return s;
        h = recv_side_.own_index;
    }
    std::memcpy(&out, slots_ + (h & mask_) * sizeof(Message), sizeof(Message));
    recv_side_.own_index = h + 1;
    // R2: frees the slot only after it was copied out; pairs with A1 in
    // spsc_refresh_head().
    ctl_->head.value.store(h + 1, std::memory_order_release);
    detail::light_barrier();
    // Relaxed: see try_send().
    if (ctl_->not_full.waiters.load(std::memory_order_relaxed) != 0) [[unlikely]]
        wake_senders(1);
    return Status::ok;
}

// The sleeper's side of the wake protocol: a barrier that orders this
// thread's earlier stores before its later loads as seen by every other
// thread of every process sharing a channel (membarrier(2), or a fallback).
// Only needed with Channel::announce_recv_wait(); see there.
void heavy_barrier() noexcept;

}  // namespace ipc
