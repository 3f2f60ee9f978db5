// libipc/futex.cpp - futex(2) and membarrier(2) wrappers.
#include "futex.hpp"

#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>
#include <mutex>

namespace ipc::detail {

std::atomic<bool> asymmetric_barriers{false};

namespace {

long sys_futex(void* addr, int op, std::uint32_t val, const timespec* ts, std::uint32_t val3) noexcept {
    return syscall(SYS_futex, addr, op, val, ts, nullptr, val3);
}

long sys_membarrier(int cmd) noexcept { return syscall(SYS_membarrier, cmd, 0u, 0); }

std::atomic<bool> fallback{false};

void register_membarrier() noexcept {
    const long supported = sys_membarrier(MEMBARRIER_CMD_QUERY);
    const bool ok = supported >= 0 && (supported & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
                    sys_membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
    // Relaxed stores: read only by this process's own threads after
    // std::call_once, which orders them.
    asymmetric_barriers.store(ok, std::memory_order_relaxed);
    fallback.store(!ok, std::memory_order_relaxed);
}

// Registration belongs to the address space; a forked child gets a new one,
// so register again there before it can wake anybody.
void atfork_child() noexcept {
    if (asymmetric_barriers.load(std::memory_order_relaxed)) register_membarrier();
}

}  // namespace

void ensure_barrier_registration() noexcept {
    static std::once_flag once;
    std::call_once(once, [] {
        register_membarrier();
        pthread_atfork(nullptr, nullptr, atfork_child);
    });
}

bool barrier_fallback() noexcept { return fallback.load(std::memory_order_relaxed); }

void heavy_barrier() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (asymmetric_barriers.load(std::memory_order_relaxed)) {
        // GLOBAL_EXPEDITED cannot fail once registered; if it somehow does,
        // the fence above and the 1 ms fallback cap keep us safe.
        if (sys_membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0) fallback.store(true, std::memory_order_relaxed);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

FutexResult futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       const Deadline* deadline) noexcept {
    timespec ts{};
    const timespec* tsp = nullptr;
    Deadline cap{};
    const Deadline* limit = deadline;
    if (barrier_fallback()) {
        cap = Clock::now() + std::chrono::milliseconds(1);
        if (!deadline || cap < *deadline) limit = &cap;
    }
    if (limit) {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(limit->time_since_epoch()).count();
        if (ns <= 0) return FutexResult::timed_out;
        ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
        tsp = &ts;
    }
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC timeout; without
    // FUTEX_PRIVATE_FLAG the key is the physical page, so sleepers and
    // wakers in different processes meet.
    const long r = sys_futex(&word, FUTEX_WAIT_BITSET, expected, tsp, FUTEX_BITSET_MATCH_ANY);
    if (r == 0) return FutexResult::woken;
    switch (errno) {
        case EAGAIN: return FutexResult::value_changed;
        case EINTR: return FutexResult::interrupted;
        case ETIMEDOUT:
            // A fallback slice ending is not the caller's timeout.
            return limit == &cap ? FutexResult::woken : FutexResult::timed_out;
        default: return FutexResult::woken;  // EFAULT etc.: treat as spurious, caller re-checks
    }
}

int futex_wake(std::atomic<std::uint32_t>& word, int n) noexcept {
    const long r = sys_futex(&word, FUTEX_WAKE, static_cast<std::uint32_t>(n), nullptr, 0);
    return r < 0 ? 0 : static_cast<int>(r);
}

}  // namespace ipc::detail
