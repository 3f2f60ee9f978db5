// ipc/shm_layout.hpp - everything that lives in shared memory, in one place.
//
// This file is the in-memory ABI of a channel segment. Every type here is
// standard-layout, holds no pointers and no virtuals, and uses offsets from
// the start of the channel instead of addresses, because each process maps the
// segment at a different address. Per-process state (the mapping, the file
// descriptor, cached indices, spin budgets) lives in ipc::Channel, never here.
//
// A channel occupies one contiguous region:
//
//   offset   0  ChannelHeader   identity and geometry (read-mostly) + closed flag
//   offset  64  tail            producers' index line
//   offset 128  head            consumers' index line
//   offset 192  not_empty       receivers sleep here (futex word + waiter count)
//   offset 256  not_full        senders sleep here
//   offset 320  slots           slot_count slots of slot_size bytes
//
// Changing anything here changes layout_version. docs/protocol.md draws it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "ipc/message.hpp"

namespace ipc::shm {

inline constexpr std::size_t cache_line = 64;

// "IPCCHAN\0" read as a little-endian 64-bit word.
inline constexpr std::uint64_t channel_magic = 0x004E414843435049ull;
inline constexpr std::uint32_t layout_version = 1;

inline constexpr std::uint32_t kind_spsc = 1;
inline constexpr std::uint32_t kind_mpmc = 2;

inline constexpr std::uint32_t max_capacity = 1u << 24;

// Line 0: written once by the creator, then only `closed` changes.
struct alignas(cache_line) ChannelHeader {
    // Written last by the creator with release (R0 in init), read first by an
    // opener with acquire (A0 in validate): a non-zero magic means every other
    // header field is initialised.
    std::atomic<std::uint64_t> magic;
    std::uint32_t version;
    std::uint32_t kind;           // kind_spsc or kind_mpmc
    std::uint32_t capacity;       // messages the channel buffers: 1 .. max_capacity
    std::uint32_t slot_size;      // bytes per slot: 64 (spsc) or 128 (mpmc)
    std::uint64_t slots_offset;   // from the start of the header
    std::uint64_t total_size;     // header + control lines + slots
    std::uint32_t creator_pid;
    std::uint32_t creator_uid;
    // 0 while open, 1 once closed. Set by one exchange in Channel::close();
    // the protocol around it is in docs/channel-protocol.md.
    std::atomic<std::uint32_t> closed;
    // Slots in the ring: capacity rounded up to a power of two, so a slot is
    // index & (slot_count - 1). Only `capacity` messages are ever buffered.
    std::uint32_t slot_count;
};

// A free-running 64-bit index: slot = index & (slot_count - 1). 64 bits never
// wrap in practice (centuries at 10^9 messages per second).
struct alignas(cache_line) IndexLine {
    std::atomic<std::uint64_t> value;
};

// One side's sleeping place. `seq` is the futex word: a waker bumps it before
// FUTEX_WAKE so a waiter that read the old value cannot sleep through the
// wake. `waiters` counts announced sleepers so a waker can skip the system
// call when it is zero.
struct alignas(cache_line) WaitLine {
    std::atomic<std::uint32_t> seq;
    std::atomic<std::uint32_t> waiters;
};

struct ChannelControl {
    ChannelHeader header;
    IndexLine tail;       // next index a producer publishes
    IndexLine head;       // next index a consumer takes
    WaitLine not_empty;   // receivers wait here; senders wake
    WaitLine not_full;    // senders wait here; receivers wake
};

// An MPMC slot: Vyukov's sequence number on its own line, then the message.
// For index i on lap L = i / slot_count:
// seq == 2L        slot is free for the producer of i
// seq == 2L + 1    slot holds the message of i
// seq == 2L + 2    consumed: free for the producer of i + slot_count
struct alignas(cache_line) MpmcSlot {
    std::atomic<std::uint64_t> seq;
    std::byte pad[cache_line - sizeof(std::atomic<std::uint64_t>)];
    Message msg;
};

inline constexpr std::size_t slots_offset = sizeof(ChannelControl);

constexpr std::size_t slot_size_for(std::uint32_t kind) noexcept {
    return kind == kind_mpmc ? sizeof(MpmcSlot) : sizeof(Message);
}
// The smallest power of two >= capacity (capacity >= 1).
constexpr std::uint32_t slot_count_for(std::uint32_t capacity) noexcept {
    std::uint32_t n = 1;
    while (n < capacity) n <<= 1;
    return n;
}
constexpr std::size_t channel_bytes(std::uint32_t kind, std::uint32_t slot_count) noexcept {
    return slots_offset + std::size_t{slot_count} * slot_size_for(kind);
}

static_assert(std::is_standard_layout_v<ChannelHeader> && std::is_standard_layout_v<ChannelControl> &&
                  std::is_standard_layout_v<MpmcSlot>,
              "shared structures must be standard-layout: their bytes are the ABI");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<std::uint32_t>::is_always_lock_free,
              "atomics shared between processes must be lock-free (no hidden process-local lock)");
static_assert(sizeof(std::atomic<std::uint32_t>) == 4, "futex words are exactly 32 bits");
static_assert(sizeof(ChannelHeader) == cache_line, "the header is one read-mostly cache line");
static_assert(offsetof(ChannelControl, tail) == 64 && offsetof(ChannelControl, head) == 128,
              "head and tail sit on their own cache lines so producer and consumer do not false-share");
static_assert(offsetof(ChannelControl, not_empty) == 192 && offsetof(ChannelControl, not_full) == 256,
              "wait lines are written only on the slow path and must not share the index lines");
static_assert(slots_offset == 320, "slots start after five control lines (docs/protocol.md)");
static_assert(sizeof(MpmcSlot) == 128 && offsetof(MpmcSlot, msg) == 64,
              "an MPMC slot is a sequence line followed by a message line");
static_assert(offsetof(ChannelHeader, closed) == 48 && offsetof(ChannelHeader, slot_count) == 52,
              "docs/protocol.md gives the header offsets");

}  // namespace ipc::shm
