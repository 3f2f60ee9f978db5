// daemon/uring_futex.hpp - IORING_OP_FUTEX_WAIT, prepared by hand.
//
// Linux 6.7 added futex waits to io_uring; Debian 12's liburing 2.3 predates
// them and has no io_uring_prep_futex_wait(). This is that helper, written
// against the kernel's ABI (io_uring/futex.c, io_futex_prep()):
//
//   sqe->opcode       51, IORING_OP_FUTEX_WAIT
//   sqe->fd           futex2 flags: FUTEX2_SIZE_U32 and *not* FUTEX2_PRIVATE,
//                     so the futex is shared: the key is the page of the
//                     mapping, and a FUTEX_WAKE from another process that
//                     maps the same memfd reaches this wait
//   sqe->addr         the address of the 32-bit futex word
//   sqe->off (addr2)  the expected value: the wait completes at once with
//                     -EAGAIN if the word differs when the kernel looks
//   sqe->addr3        the wait bitmask: FUTEX_BITSET_MATCH_ANY, so a plain
//                     FUTEX_WAKE (which wakes with the all-ones mask) matches
//   sqe->futex_flags  (the op-flags union, rw_flags) must be 0; so must len,
//                     buf_index and file_index: io_uring_prep_rw() zeroes them
//
// Completion (cqe->res): 0 woken; -EAGAIN the value differed; -ECANCELED
// cancelled (IORING_OP_ASYNC_CANCEL); -EINVAL a kernel without futex support
// in io_uring (ipcd probes for the opcode at start-up instead).
//
// The key is computed when the SQE is issued, so the word must stay mapped
// until then (ipcd submits pending SQEs before it unmaps a session).
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstdint>

namespace ipcd {

inline constexpr int uring_op_futex_wait = 51;              // IORING_OP_FUTEX_WAIT (Linux 6.7)
inline constexpr std::uint32_t futex2_size_u32 = 0x02;      // FUTEX2_SIZE_U32 (linux/futex.h, 6.7)
inline constexpr std::uint64_t futex_match_any = 0xffffffffu;  // FUTEX_BITSET_MATCH_ANY

// Prepares `sqe` to sleep while `word` holds `expected` (shared futex).
inline void prep_futex_wait(io_uring_sqe* sqe, const std::atomic<std::uint32_t>& word,
                            std::uint32_t expected) noexcept {
    io_uring_prep_rw(uring_op_futex_wait, sqe, static_cast<int>(futex2_size_u32), &word, 0, expected);
    sqe->addr3 = futex_match_any;
    sqe->rw_flags = 0;  // the futex_flags field: no flags
}

}  // namespace ipcd
