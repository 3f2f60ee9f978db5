// libipc/channel.cpp - channel set-up, the MPMC ring, and the blocking paths.
//
// The wait/wake protocol implemented by block() and wake_*() is written down
// in docs/channel-protocol.md; the labels (R1, A1, ...) below refer to it.
#include "ipc/channel.hpp"

#include <sched.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <utility>
#include <algorithm>
#include <climits>
#include <system_error>

#include "futex.hpp"

namespace ipc {

using detail::FutexResult;

namespace {

void check_options(const ChannelOptions& o) {
    if (o.kind != ChannelKind::spsc && o.kind != ChannelKind::mpmc)
        throw std::system_error(errc::bad_geometry, "channel kind must be spsc or mpmc");
    if (o.capacity == 0 || o.capacity > shm::max_capacity)
        throw std::system_error(errc::invalid_capacity, "capacity " + std::to_string(o.capacity));
}

std::size_t round_up(std::size_t v, std::size_t to) noexcept { return (v + to - 1) / to * to; }

// Initialises a zero-filled or reused region as an empty, open channel.
shm::ChannelControl* init_control(void* mem, const ChannelOptions& o) noexcept {
    const auto kind = static_cast<std::uint32_t>(o.kind);
    std::memset(mem, 0, shm::slots_offset);
    auto* ctl = new (mem) shm::ChannelControl{};
    auto& h = ctl->header;
    h.version = shm::layout_version;
    h.kind = kind;
    h.capacity = o.capacity;
    h.slot_size = static_cast<std::uint32_t>(shm::slot_size_for(kind));
    h.slots_offset = shm::slots_offset;
    h.slot_count = shm::slot_count_for(o.capacity);
    h.total_size = shm::channel_bytes(kind, h.slot_count);
    h.creator_pid = static_cast<std::uint32_t>(::getpid());
    h.creator_uid = static_cast<std::uint32_t>(::getuid());
    auto* base = static_cast<std::byte*>(mem) + shm::slots_offset;
    if (kind == shm::kind_mpmc) {
        auto* slots = reinterpret_cast<shm::MpmcSlot*>(base);
        for (std::uint32_t i = 0; i < h.slot_count; ++i) {
            auto* s = new (&slots[i]) shm::MpmcSlot{};
            // Relaxed: published by the magic store below. Turn 0: free.
            s->seq.store(0, std::memory_order_relaxed);
        }
    } else {
        std::memset(base, 0, std::size_t{h.slot_count} * sizeof(Message));
    }
    // R0: publishes every field above; pairs with A0 in validate().
    h.magic.store(shm::channel_magic, std::memory_order_release);
    return ctl;
}

// Checks that `avail` bytes at `mem` hold a channel this library can use.
shm::ChannelControl* validate(void* mem, std::size_t avail) {
    if (avail < sizeof(shm::ChannelHeader)) throw std::system_error(errc::truncated);
    auto* ctl = static_cast<shm::ChannelControl*>(mem);
    const auto& h = ctl->header;
    // A0: pairs with R0 in init_control().
    const std::uint64_t magic = h.magic.load(std::memory_order_acquire);
    if (magic == 0) throw std::system_error(errc::not_initialized);
    if (magic != shm::channel_magic) throw std::system_error(errc::not_a_channel);
    if (h.version != shm::layout_version)
        throw std::system_error(errc::version_mismatch, "segment has layout version " + std::to_string(h.version) +
                                                            ", this library reads version " +
                                                            std::to_string(shm::layout_version));
    if ((h.kind != shm::kind_spsc && h.kind != shm::kind_mpmc) || h.capacity == 0 ||
        h.capacity > shm::max_capacity || h.slot_count != shm::slot_count_for(h.capacity) ||
        h.slot_size != shm::slot_size_for(h.kind) || h.slots_offset != shm::slots_offset ||
        h.total_size != shm::channel_bytes(h.kind, h.slot_count))
        throw std::system_error(errc::bad_geometry);
    if (h.total_size > avail)
        throw std::system_error(errc::truncated, "header says " + std::to_string(h.total_size) +
                                                     " bytes, segment has " + std::to_string(avail));
    return ctl;
}

// Adaptive spinning. On the target machines a cross-CPU wake costs about
// 30 us while a spinning cross-CPU hand-off costs well under 1 us, so a
// waiter spins first, for a budget learned per handle side:
//
//   spin succeeded            budget = max(budget, 2 x time spun), >= 1 us
//   yield helped, or another
//   task ran during it        budget = floor: the peer (or someone) needs
//                             our CPU, and spinning only delays them
//   slept, woken after t      t < limit: budget = t + t/4 (spinning that
//                             long would have caught it); else halve
//
// All capped at the handle's limit (set_spin). The third rule is what lets
// two sides that fell into sleeping on every hop climb back into spinning;
// the second keeps the budget at the floor when both share one CPU.
constexpr std::uint32_t spin_floor_ns = 200;
// A sched_yield() that takes longer than this ran another task.
constexpr auto yield_ran_someone = std::chrono::microseconds(2);

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

// Relaxed loads and stores of the budget throughout: it is a per-process
// heuristic, and a lost update only changes how long some call spins.
void set_budget(std::atomic<std::uint32_t>& budget, std::int64_t ns, std::uint32_t limit) noexcept {
    const std::int64_t clamped = std::clamp<std::int64_t>(ns, std::min(spin_floor_ns, limit), limit);
    budget.store(static_cast<std::uint32_t>(clamped), std::memory_order_relaxed);
}

std::int64_t ns_since(Clock::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t).count();
}

// Spins until ready() or the budget (or the deadline) runs out.
template <class Ready>
bool spin(std::atomic<std::uint32_t>& budget, std::uint32_t limit, Clock::time_point start, const Deadline* deadline,
          Ready&& ready) noexcept {
    const std::uint32_t b = std::min(budget.load(std::memory_order_relaxed), limit);
    if (b == 0) return false;
    auto until = start + std::chrono::nanoseconds(b);
    if (deadline && *deadline < until) until = *deadline;
    for (;;) {
        for (int i = 0; i < 16; ++i) {
            if (ready()) {
                set_budget(budget, std::max<std::int64_t>({b, 2 * ns_since(start), 1000}), limit);
                return true;
            }
            cpu_relax();
        }
        if (Clock::now() >= until) return false;
    }
}

bool passed(const Deadline* d) noexcept { return d && Clock::now() >= *d; }

}  // namespace

// ---------------------------------------------------------------------------
// Handles

void Channel::attach(std::shared_ptr<Mapping> mapping, shm::ChannelControl* ctl) noexcept {
    detail::ensure_barrier_registration();
    mapping_ = std::move(mapping);
    ctl_ = ctl;
    slots_ = reinterpret_cast<std::byte*>(ctl) + ctl->header.slots_offset;
    cap_ = ctl->header.capacity;
    mask_ = ctl->header.slot_count - 1;
    shift_ = static_cast<std::uint32_t>(__builtin_ctzll(ctl->header.slot_count));
    kind_ = ctl->header.kind;
    // A new handle's caches say "full" to the sender and "empty" to the
    // receiver, so its first call refreshes both indices from the segment.
    send_side_.own_index = cap_;
    send_side_.other_index = 0;
    recv_side_.own_index = 0;
    recv_side_.other_index = 0;
}

Channel::Channel(Channel&& o) noexcept { *this = std::move(o); }

Channel& Channel::operator=(Channel&& o) noexcept {
    if (this == &o) return *this;
    mapping_ = std::move(o.mapping_);
    ctl_ = std::exchange(o.ctl_, nullptr);
    slots_ = std::exchange(o.slots_, nullptr);
    cap_ = std::exchange(o.cap_, 0);
    mask_ = std::exchange(o.mask_, 0);
    shift_ = std::exchange(o.shift_, 0);
    kind_ = std::exchange(o.kind_, 0);
    spin_limit_ns_.store(o.spin_limit_ns_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    send_side_.own_index = o.send_side_.own_index;
    send_side_.other_index = o.send_side_.other_index;
    recv_side_.own_index = o.recv_side_.own_index;
    recv_side_.other_index = o.recv_side_.other_index;
    return *this;
}

Channel::~Channel() = default;

std::size_t Channel::bytes_needed(const ChannelOptions& o) {
    check_options(o);
    return round_up(shm::channel_bytes(static_cast<std::uint32_t>(o.kind), shm::slot_count_for(o.capacity)),
                    shm::cache_line);
}

Channel Channel::create_in(std::shared_ptr<Mapping> mapping, std::size_t offset, const ChannelOptions& o) {
    const std::size_t need = bytes_needed(o);
    if (!mapping || offset % shm::cache_line != 0 || offset > mapping->size() || mapping->size() - offset < need)
        throw std::system_error(EINVAL, std::generic_category(),
                                "create channel in mapping: offset must be 64-byte aligned and the channel "
                                "must fit (" + std::to_string(need) + " bytes)");
    auto* ctl = init_control(static_cast<std::byte*>(mapping->data()) + offset, o);
    Channel ch;
    ch.attach(std::move(mapping), ctl);
    return ch;
}

Channel Channel::open_in(std::shared_ptr<Mapping> mapping, std::size_t offset) {
    if (!mapping || offset % shm::cache_line != 0 || offset >= mapping->size())
        throw std::system_error(EINVAL, std::generic_category(),
                                "open channel in mapping: offset must be 64-byte aligned and inside it");
    auto* ctl = validate(static_cast<std::byte*>(mapping->data()) + offset, mapping->size() - offset);
    Channel ch;
    ch.attach(std::move(mapping), ctl);
    return ch;
}

Channel Channel::create_anonymous(const ChannelOptions& o) {
    auto m = Mapping::create_memfd("ipc-channel", bytes_needed(o), true);
    return create_in(std::move(m), 0, o);
}

Channel Channel::from_fd(int fd) { return open_in(Mapping::map_fd(fd), 0); }

int Channel::fd() const noexcept { return mapping_ ? mapping_->fd() : -1; }

void Channel::set_spin(std::chrono::nanoseconds limit) noexcept {
    const auto ns = std::clamp<std::int64_t>(limit.count(), 0, 1'000'000'000);
    // Relaxed: a tuning knob, read at the start of each blocking call.
    spin_limit_ns_.store(static_cast<std::uint32_t>(ns), std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// SPSC refreshes (out of line: taken once per cached-index miss)

Status Channel::spsc_refresh_head() noexcept {
    // Relaxed: only the sender writes tail, so this is the value the last
    // sending handle stored (ours, or a previous owner's of the role).
    const std::uint64_t t = ctl_->tail.value.load(std::memory_order_relaxed);
    // A1: the receiver copied a slot out before it advanced head (R2), so
    // after this load we may overwrite every slot below head.
    const std::uint64_t h = ctl_->head.value.load(std::memory_order_acquire);
    if (t - h > cap_) return Status::corrupted;  // head ahead of tail, or tail too far ahead
    send_side_.own_index = t;
    send_side_.other_index = h;
    return t - h == cap_ ? Status::would_block : Status::ok;
}

Status Channel::spsc_refresh_tail() noexcept {
    // Relaxed: only the receiver writes head.
    const std::uint64_t h = ctl_->head.value.load(std::memory_order_relaxed);
    // A2: pairs with R1 in try_send(): the slots below tail are written.
    std::uint64_t t = ctl_->tail.value.load(std::memory_order_acquire);
    if (t - h > cap_) return Status::corrupted;
    recv_side_.own_index = h;
    recv_side_.other_index = t;
    if (t != h) return Status::ok;
    // Empty. Acquire pairs with the exchange in close(): a message sent
    // before close() is then visible to the second look below, so receivers
    // drain everything buffered before they see `closed`.
    if (!ctl_->header.closed.load(std::memory_order_acquire)) return Status::would_block;
    t = ctl_->tail.value.load(std::memory_order_acquire);
    if (t - h > cap_) return Status::corrupted;
    recv_side_.other_index = t;
    return t != h ? Status::ok : Status::closed;
}

// ---------------------------------------------------------------------------
// MPMC ring: Vyukov's bounded queue, one sequence number per slot.

// Slot turns: for index pos on lap L = pos / capacity, the slot's seq is
//   2L      free: the producer of pos may write it
//   2L + 1  full: holds the message of pos
//   2L + 2  consumed: free for the producer of pos + capacity (lap L + 1)
// (Vyukov's per-slot sequence with lap parity, so capacity 1 works too.)

Status Channel::mpmc_try_send(const Message& m) noexcept {
    // Relaxed: see try_send().
    if (ctl_->header.closed.load(std::memory_order_relaxed)) [[unlikely]]
        return Status::closed;
    auto* slots = reinterpret_cast<shm::MpmcSlot*>(slots_);
    // Relaxed: tail only arbitrates which producer owns an index; the
    // message itself is ordered by the slot's seq (R4/A5).
    std::uint64_t pos = ctl_->tail.value.load(std::memory_order_relaxed);
    shm::MpmcSlot* slot;
    for (;;) {
        slot = &slots[pos & mask_];
        // A4: pairs with R5 in mpmc_try_recv(): the previous lap's message
        // was copied out before the slot was handed back to us.
        const std::uint64_t seq = slot->seq.load(std::memory_order_acquire);
        const auto diff = static_cast<std::int64_t>(seq - 2 * (pos >> shift_));
        if (diff == 0) {
            // A capacity below the slot count is enforced against head.
            // Relaxed: this bound guards no data (the slot's turn, A4, does);
            // head never decreases, so a stale value only reports full early,
            // and block() re-checks after announcing itself.
            if (cap_ <= mask_) {
                const std::uint64_t h = ctl_->head.value.load(std::memory_order_relaxed);
                const std::uint64_t used = pos - h;
                if (used >= cap_) [[unlikely]] {
                    if (static_cast<std::int64_t>(used) < 0) {
                        // Head is past pos: pos was claimed and consumed after
                        // we read its turn (retry at the current tail), or a
                        // peer wrote head. Consumers take only claimed
                        // indices, so head never passes tail: a consumer's
                        // head CAS follows its A5, which saw R4, which
                        // followed the producer's tail CAS; the fence keeps
                        // our tail load after our head load (x86-64 and
                        // AArch64 are multi-copy atomic, so we see that CAS).
                        std::atomic_thread_fence(std::memory_order_acquire);
                        const std::uint64_t now = ctl_->tail.value.load(std::memory_order_relaxed);
                        if (static_cast<std::int64_t>(now - h) < 0) return Status::corrupted;
                        pos = now;
                        continue;
                    }
                    // A4 saw the turn handed back by the consumer of
                    // pos - slot_count, whose head CAS therefore happened
                    // before our load: head >= pos - mask_. A head further
                    // behind was written by a peer.
                    if (used > mask_) return Status::corrupted;
                    return Status::would_block;
                }
            }
            // The slot is free for index pos. CAS cases:
            //  success: we own index pos and its slot;
            //  failure: another producer took pos first; `pos` now holds the
            //           current tail and we retry on that slot. Nothing was
            //           written, so retrying is safe.
            if (ctl_->tail.value.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed,
                                                       std::memory_order_relaxed))
                break;
        } else if (diff < 0) {
            // -1: the previous lap's message is still there; -2: its producer
            // has claimed but not written it yet. Either way: full.
            if (diff < -2) return Status::corrupted;
            return Status::would_block;
        } else {
            // Another producer already used pos: our tail was stale. If tail
            // has not moved, the seq is garbage written by a peer.
            const std::uint64_t now = ctl_->tail.value.load(std::memory_order_relaxed);
            if (now == pos) return Status::corrupted;
            pos = now;
        }
    }
    // commit: from here the message is delivered.
    std::memcpy(static_cast<void*>(&slot->msg), &m, sizeof(Message));
    // R4: publishes the message; pairs with A5 in mpmc_try_recv().
    slot->seq.store(2 * (pos >> shift_) + 1, std::memory_order_release);
    detail::light_barrier();
    // Relaxed: ordered after R4 by light_barrier(); see try_send().
    if (ctl_->not_empty.waiters.load(std::memory_order_relaxed) != 0) [[unlikely]]
        wake_receivers(1);
    return Status::ok;
}

Status Channel::mpmc_try_recv(Message& out) noexcept {
    auto* slots = reinterpret_cast<shm::MpmcSlot*>(slots_);
    bool saw_closed = false;
    // Relaxed: as for tail in mpmc_try_send().
    std::uint64_t pos = ctl_->head.value.load(std::memory_order_relaxed);
    shm::MpmcSlot* slot;
    for (;;) {
        slot = &slots[pos & mask_];
        // A5: pairs with R4 in mpmc_try_send(): the message is written.
        const std::uint64_t seq = slot->seq.load(std::memory_order_acquire);
        const auto diff = static_cast<std::int64_t>(seq - (2 * (pos >> shift_) + 1));
        if (diff == 0) {
            // The slot holds the message of index pos. CAS cases:
            //  success: we own it;
            //  failure: another consumer took pos; retry at the new head.
            if (ctl_->head.value.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed,
                                                       std::memory_order_relaxed))
                break;
        } else if (diff < 0) {
            // -1: not produced yet; -2: the previous lap's consumer is still
            // copying out. Either way: empty for us.
            if (diff < -2) return Status::corrupted;
            if (saw_closed) {
                // Closed and the slot at head is not produced yet. If a
                // sender claimed this index (tail > pos) before close(), its
                // message is still on the way and later indices may already
                // be published: not drained yet, so wait for it. Relaxed:
                // tail only tells us whether a claim exists; the message is
                // ordered by its turn (R4/A5) when we come back.
                // (Found by the SPIN model, docs/model.md.)
                if (ctl_->tail.value.load(std::memory_order_relaxed) != pos) return Status::would_block;
                return Status::closed;
            }
            // Acquire pairs with the exchange in close(); then look once more
            // so a message sent before close() is still drained.
            if (!ctl_->header.closed.load(std::memory_order_acquire)) return Status::would_block;
            saw_closed = true;
            pos = ctl_->head.value.load(std::memory_order_relaxed);
        } else {
            const std::uint64_t now = ctl_->head.value.load(std::memory_order_relaxed);
            if (now == pos) return Status::corrupted;
            pos = now;
        }
    }
    std::memcpy(&out, &slot->msg, sizeof(Message));
    // R5: hands the slot to the producer of pos + capacity; pairs with A4.
    slot->seq.store(2 * (pos >> shift_) + 2, std::memory_order_release);
    detail::light_barrier();
    if (ctl_->not_full.waiters.load(std::memory_order_relaxed) != 0) [[unlikely]]
        wake_senders(1);
    return Status::ok;
}

// ---------------------------------------------------------------------------
// Waking and sleeping

void Channel::wake_receivers(std::uint32_t n) noexcept {
    // R3: pairs with A3 in block(). Bumping seq first means a sleeper that
    // read the old value either sees the new one in futex_wait (EAGAIN) or is
    // already queued and gets this wake.
    ctl_->not_empty.seq.fetch_add(1, std::memory_order_release);
    detail::futex_wake(ctl_->not_empty.seq, static_cast<int>(n));
}

void Channel::wake_senders(std::uint32_t n) noexcept {
    // R3 for the senders' side.
    ctl_->not_full.seq.fetch_add(1, std::memory_order_release);
    detail::futex_wake(ctl_->not_full.seq, static_cast<int>(n));
}

namespace {

// The blocking protocol shared by send and receive. `attempt` performs the
// non-blocking operation; anything but would_block ends the wait.
//
//   1. attempt; spin (adaptive budget, see spin()) re-attempting; yield
//      once; attempt.
//   2. announce: waiters += 1                          (W1)
//   3. heavy_barrier()        pairs with light_barrier() of the waker
//   4. s = seq (acquire, A3)  pairs with R3 of the waker
//   5. attempt; if it succeeds, withdraw and return
//   6. futex_wait(seq, s, deadline)
//   7. withdraw: waiters -= 1; attempt; on timeout return timed_out
//
// Why no wakeup is lost: a waker publishes, runs light_barrier(), then reads
// waiters. By the membarrier guarantee, either its publication is visible to
// our attempt in 5, or its read of waiters sees our W1 and it bumps seq and
// calls FUTEX_WAKE. If the bump precedes our read in 4 we see the publication
// in 5 (R3 -> A3); otherwise futex_wait sees seq != s and returns at once, or
// we are queued before the wake. docs/channel-protocol.md has the full case
// analysis, including close() and timed-out waiters.
template <class Attempt>
Status block(shm::WaitLine& wl, std::atomic<std::uint32_t>& budget, std::uint32_t spin_limit,
             const Deadline* deadline, Attempt&& attempt) noexcept {
    Status s = attempt();
    if (s != Status::would_block) return s;
    const auto start = Clock::now();
    if (spin(budget, spin_limit, start, deadline, [&] { return (s = attempt()) != Status::would_block; })) return s;
    bool crowded = false;  // another task wanted our CPU
    if (spin_limit != 0) {
        // The peer may be runnable on this CPU: let it run before we pay for
        // a sleep and a wake.
        const auto before = Clock::now();
        ::sched_yield();
        crowded = Clock::now() - before > yield_ran_someone;
        if ((s = attempt()) != Status::would_block) {
            set_budget(budget, 0, spin_limit);
            return s;
        }
        if (crowded) set_budget(budget, 0, spin_limit);
    }
    for (;;) {
        if (passed(deadline)) return Status::timed_out;
        // W1. Relaxed: heavy_barrier() orders it before the re-check.
        wl.waiters.fetch_add(1, std::memory_order_relaxed);
        detail::heavy_barrier();
        // A3: pairs with R3 in wake_*().
        const std::uint32_t seq = wl.seq.load(std::memory_order_acquire);
        s = attempt();
        FutexResult r = FutexResult::woken;
        if (s == Status::would_block) r = detail::futex_wait(wl.seq, seq, deadline);
        // Withdraw. Relaxed: a waker that still sees us costs one spurious
        // FUTEX_WAKE, nothing more.
        wl.waiters.fetch_sub(1, std::memory_order_relaxed);
        // Always look once more after waking, even on timeout: a wake and a
        // timeout can race, and a message must not be left behind while we
        // report timed_out.
        if (s == Status::would_block) s = attempt();
        if (s != Status::would_block) {
            if (spin_limit != 0 && !crowded) {
                const std::int64_t waited = ns_since(start);
                if (waited < spin_limit)
                    set_budget(budget, waited + waited / 4, spin_limit);
                else
                    set_budget(budget, budget.load(std::memory_order_relaxed) / 2, spin_limit);
            }
            return s;
        }
        if (r == FutexResult::timed_out) {
            if (spin_limit != 0) set_budget(budget, budget.load(std::memory_order_relaxed) / 2, spin_limit);
            return Status::timed_out;
        }
    }
}

}  // namespace

Status Channel::send_slow(const Message& m, const Deadline* d) noexcept {
    return block(ctl_->not_full, send_side_.spin_ns, spin_limit_ns_.load(std::memory_order_relaxed), d,
                 [&] { return try_send(m); });
}

Status Channel::recv_slow(Message& out, const Deadline* d) noexcept {
    return block(ctl_->not_empty, recv_side_.spin_ns, spin_limit_ns_.load(std::memory_order_relaxed), d,
                 [&] { return try_recv(out); });
}

Status Channel::send_until(const Message& m, Deadline d) noexcept { return send_slow(m, &d); }
Status Channel::recv_until(Message& out, Deadline d) noexcept { return recv_slow(out, &d); }

// ---------------------------------------------------------------------------
// Batches

BatchResult Channel::try_send_batch(std::span<const Message> msgs) noexcept {
    if (msgs.empty()) return {Status::ok, 0};
    if (kind_ != shm::kind_spsc) {
        std::size_t i = 0;
        for (; i < msgs.size(); ++i) {
            Status s = mpmc_try_send(msgs[i]);
            if (s != Status::ok) return {s, i};
        }
        return {Status::ok, i};
    }
    if (ctl_->header.closed.load(std::memory_order_relaxed)) return {Status::closed, 0};
    const std::uint64_t cap = cap_;
    const std::uint64_t slots = mask_ + 1;
    if (send_side_.own_index - send_side_.other_index >= cap ||
        cap - (send_side_.own_index - send_side_.other_index) < msgs.size()) {
        Status s = spsc_refresh_head();
        if (s == Status::corrupted) return {s, 0};
    }
    const std::uint64_t t = send_side_.own_index;
    const std::size_t n = std::min<std::uint64_t>(cap - (t - send_side_.other_index), msgs.size());
    if (n == 0) return {Status::would_block, 0};
    // commit: copy in at most two runs (the ring may wrap), then publish once.
    const std::size_t first = std::min<std::uint64_t>(n, slots - (t & mask_));
    std::memcpy(static_cast<void*>(slots_ + (t & mask_) * sizeof(Message)), msgs.data(), first * sizeof(Message));
    std::memcpy(static_cast<void*>(slots_), msgs.data() + first, (n - first) * sizeof(Message));
    send_side_.own_index = t + n;
    // R1 (batch): see try_send().
    ctl_->tail.value.store(t + n, std::memory_order_release);
    detail::light_barrier();
    if (ctl_->not_empty.waiters.load(std::memory_order_relaxed) != 0) wake_receivers(1);
    return {n == msgs.size() ? Status::ok : Status::would_block, n};
}

BatchResult Channel::send_batch(std::span<const Message> msgs) noexcept {
    std::size_t done = 0;
    while (done < msgs.size()) {
        BatchResult r = try_send_batch(msgs.subspan(done));
        done += r.count;
        if (r.status == Status::ok) break;
        if (r.status != Status::would_block) return {r.status, done};
        // Full: sleep until one more fits, then go back to batching.
        Status s = send_slow(msgs[done], nullptr);
        if (s != Status::ok) return {s, done};
        ++done;
    }
    return {Status::ok, done};
}

BatchResult Channel::try_recv_batch(std::span<Message> out) noexcept {
    if (out.empty()) return {Status::ok, 0};
    if (kind_ != shm::kind_spsc) {
        std::size_t i = 0;
        for (; i < out.size(); ++i) {
            Status s = mpmc_try_recv(out[i]);
            if (s != Status::ok) return {i ? Status::ok : s, i};
        }
        return {Status::ok, i};
    }
    const std::uint64_t cap = cap_;
    const std::uint64_t slots = mask_ + 1;
    if (recv_side_.other_index - recv_side_.own_index - 1 >= cap ||
        recv_side_.other_index - recv_side_.own_index < out.size()) {
        Status s = spsc_refresh_tail();
        if (s != Status::ok) return {s, 0};
    }
    const std::uint64_t h = recv_side_.own_index;
    const std::size_t n = std::min<std::uint64_t>(recv_side_.other_index - h, out.size());
    const std::size_t first = std::min<std::uint64_t>(n, slots - (h & mask_));
    std::memcpy(out.data(), slots_ + (h & mask_) * sizeof(Message), first * sizeof(Message));
    std::memcpy(out.data() + first, slots_, (n - first) * sizeof(Message));
    recv_side_.own_index = h + n;
    // R2 (batch): see try_recv().
    ctl_->head.value.store(h + n, std::memory_order_release);
    detail::light_barrier();
    if (ctl_->not_full.waiters.load(std::memory_order_relaxed) != 0) wake_senders(1);
    return {Status::ok, n};
}

BatchResult Channel::recv_batch_slow(std::span<Message> out, const Deadline* d) noexcept {
    if (out.empty()) return {Status::ok, 0};
    BatchResult r = try_recv_batch(out);
    if (r.status != Status::would_block) return r;
    Status s = recv_slow(out[0], d);
    if (s != Status::ok) return {s, 0};
    BatchResult more = try_recv_batch(out.subspan(1));
    return {Status::ok, 1 + (more.status == Status::ok ? more.count : 0)};
}

BatchResult Channel::recv_batch(std::span<Message> out) noexcept { return recv_batch_slow(out, nullptr); }
BatchResult Channel::recv_batch_until(std::span<Message> out, Deadline d) noexcept {
    return recv_batch_slow(out, &d);
}

// ---------------------------------------------------------------------------
// Close, stats, external waits

bool Channel::close() noexcept {
    // seq_cst exchange: exactly one caller sees 0. It is sequenced before the
    // seq bumps below (R3), so a sleeper that reads a bumped seq sees closed.
    if (ctl_->header.closed.exchange(1, std::memory_order_seq_cst) != 0) return false;
    // Wake every sleeper on both sides, unconditionally: close is rare, and
    // a sleeper that read seq before the bump gets EAGAIN or this wake.
    for (shm::WaitLine* wl : {&ctl_->not_empty, &ctl_->not_full}) {
        wl->seq.fetch_add(1, std::memory_order_release);
        detail::futex_wake(wl->seq, INT32_MAX);
    }
    return true;
}

bool Channel::closed() const noexcept { return ctl_->header.closed.load(std::memory_order_acquire) != 0; }

ChannelStats Channel::stats() const noexcept {
    // Relaxed throughout: a monitoring snapshot with no ordering promises.
    const std::uint64_t t = ctl_->tail.value.load(std::memory_order_relaxed);
    const std::uint64_t h = ctl_->head.value.load(std::memory_order_relaxed);
    const std::uint64_t depth = t - h;
    return ChannelStats{
        .kind = kind(),
        .capacity = capacity(),
        .depth = depth > cap_ ? (static_cast<std::int64_t>(depth) < 0 ? 0 : cap_) : depth,
        .sleeping_senders = ctl_->not_full.waiters.load(std::memory_order_relaxed),
        .sleeping_receivers = ctl_->not_empty.waiters.load(std::memory_order_relaxed),
        .closed = ctl_->header.closed.load(std::memory_order_relaxed) != 0,
    };
}

bool Channel::readable() const noexcept {
    const std::uint64_t h = ctl_->head.value.load(std::memory_order_relaxed);
    bool ready;
    if (kind_ == shm::kind_spsc) {
        // A2 (peek): pairs with R1, as in spsc_refresh_tail().
        ready = ctl_->tail.value.load(std::memory_order_acquire) != h;
    } else {
        // A5: as in mpmc_try_recv(). Turns carry the lap, not the index: the
        // message of h is turn 2·lap + 1. Not ready only where try_recv()
        // would say would_block (diff -1: not produced yet; -2: the previous
        // lap is still being copied out); a message, a head that moved on, or
        // a corrupted turn are for try_recv() to report.
        const auto* slot = &reinterpret_cast<const shm::MpmcSlot*>(slots_)[h & mask_];
        const auto diff = static_cast<std::int64_t>(slot->seq.load(std::memory_order_acquire) -
                                                    (2 * (h >> shift_) + 1));
        ready = diff != -1 && diff != -2;
    }
    return ready || ctl_->header.closed.load(std::memory_order_acquire) != 0;
}

Channel::WaitTicket Channel::prepare_recv_wait() noexcept {
    auto& wl = ctl_->not_empty;
    // W1, heavy barrier, A3: exactly steps 2-4 of block().
    wl.waiters.fetch_add(1, std::memory_order_relaxed);
    detail::heavy_barrier();
    const std::uint32_t seq = wl.seq.load(std::memory_order_acquire);
    // Step 5 without consuming.
    const bool ready = readable();
    if (ready) wl.waiters.fetch_sub(1, std::memory_order_relaxed);
    return {ready, seq};
}

void Channel::finish_recv_wait() noexcept { ctl_->not_empty.waiters.fetch_sub(1, std::memory_order_relaxed); }

// prepare_recv_wait() in two halves; the caller runs heavy_barrier() between
// every announce and every check (W1 ... heavy barrier ... A3, step 5).
void Channel::announce_recv_wait() noexcept { ctl_->not_empty.waiters.fetch_add(1, std::memory_order_relaxed); }

Channel::WaitTicket Channel::check_recv_wait() noexcept {
    auto& wl = ctl_->not_empty;
    const std::uint32_t seq = wl.seq.load(std::memory_order_acquire);
    const bool ready = readable();
    if (ready) wl.waiters.fetch_sub(1, std::memory_order_relaxed);
    return {ready, seq};
}

void heavy_barrier() noexcept { detail::heavy_barrier(); }

}  // namespace ipc
