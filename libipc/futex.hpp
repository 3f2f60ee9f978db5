// libipc/futex.hpp - shared futex waits and wakes, and the sleeper's barrier.
//
// Free functions over std::atomic<uint32_t> living in shared memory. Always
// shared futexes (never FUTEX_PRIVATE_FLAG): the waker is usually another
// process. Deadlines are absolute CLOCK_MONOTONIC time points
// (FUTEX_WAIT_BITSET interprets its timeout as absolute).
#pragma once

#include <atomic>
#include <cstdint>

#include "ipc/channel.hpp"

namespace ipc::detail {

enum class FutexResult {
    woken,          // FUTEX_WAKE reached us (or a spurious wakeup: re-check)
    value_changed,  // *word != expected when the kernel looked (EAGAIN)
    interrupted,    // a signal handler ran (EINTR)
    timed_out,      // the deadline passed
};

// Sleeps while *word == expected, until woken or `deadline` (nullptr: none).
FutexResult futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       const Deadline* deadline) noexcept;

// Wakes up to n sleepers on `word`; returns how many were woken.
int futex_wake(std::atomic<std::uint32_t>& word, int n) noexcept;

// The sleeper's half of the asymmetric Dekker barrier: after it returns,
// every thread of every registered process has executed a full memory
// barrier, so a waker's store that preceded its light_barrier() is visible
// here, or the waker's later load sees our announcement. Falls back to a
// plain fence when membarrier is unavailable (then light_barrier() is a
// fence too).
void heavy_barrier() noexcept;

// Registers this process for MEMBARRIER_CMD_GLOBAL_EXPEDITED (once, and again
// in a forked child) and sets asymmetric_barriers. Called by every Channel
// constructor path before the channel is used.
void ensure_barrier_registration() noexcept;

// True if this process could not use membarrier: sleepers then wake at least
// every millisecond to re-check, since a peer process may still be using
// compiler-only barriers (docs/channel-protocol.md, "Fallback").
bool barrier_fallback() noexcept;

}  // namespace ipc::detail
