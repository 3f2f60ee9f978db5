// ipc/inspect.hpp - read-only inspection of named channels, for tools.
//
// A named channel NAME lives in POSIX shared memory as /dev/shm/ipc.NAME
// (ipc/channel.hpp). The calls here look at those files from the outside,
// the way `ipcctl channels` and `ipcctl channel stat` do: they never create,
// open as a Channel, write, lock or wake anything, and they never trust the
// file. Anyone may write a file called ipc.NAME into /dev/shm, so each one is
// treated as hostile:
//
//   - opened O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, and only if an
//     lstat says it is a regular file (a FIFO, device or symbolic link is
//     reported, never opened or followed);
//   - read with pread(2), never mapped: a mapping of a file that its owner
//     truncates faults (SIGBUS) on the next load, while pread just returns
//     what is there;
//   - its header is checked field by field against ipc/shm_layout.hpp (magic,
//     layout version, kind, capacity, slot count and size, offsets, total
//     size against the file's size) before any counter is believed.
//
// A file that fails a check is still reported, with `info` empty and a
// one-line `problem` ("bad magic", "truncated: 12 bytes", "version 7 (this
// libipc knows 1)"), so a tool can list it as invalid and say why.
//
// The counters (head, tail, sleepers, closed) are a snapshot of a segment
// that other processes may be changing while it is read: each value is what
// the kernel copied at some instant during the call, and they may disagree
// with each other (as Channel::stats() warns). `depth` is clamped to
// 0 .. capacity; `head` and `tail` are the raw values.
//
// Threads: every call may be made from any thread; none keeps state.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "ipc/channel.hpp"

namespace ipc {

// The header of a valid channel and a snapshot of its counters.
struct ChannelInfo {
    ChannelKind kind = ChannelKind::spsc;
    std::uint32_t version = 0;       // shm::layout_version
    std::uint32_t capacity = 0;      // messages it buffers at most
    std::uint32_t slot_count = 0;    // capacity rounded up to a power of two
    std::uint32_t slot_size = 0;     // bytes per slot
    std::uint64_t slots_offset = 0;  // from the start of the segment
    std::uint64_t total_size = 0;    // bytes the channel occupies
    std::uint32_t creator_pid = 0;   // as the creator wrote them; not checked
    std::uint32_t creator_uid = 0;
    bool closed = false;
    std::uint64_t head = 0;          // next index a receiver takes
    std::uint64_t tail = 0;          // next index a sender publishes
    std::uint64_t depth = 0;         // tail - head, clamped to 0 .. capacity
    std::uint32_t sleeping_senders = 0;    // announced futex sleepers (not_full)
    std::uint32_t sleeping_receivers = 0;  // (not_empty)
    std::uint32_t not_full_seq = 0;        // the futex words: wake counts, mod 2^32
    std::uint32_t not_empty_seq = 0;
};

// One /dev/shm/ipc.* file: who owns it and what it holds.
struct ChannelEntry {
    std::string name;  // NAME in /dev/shm/ipc.NAME, byte for byte (may break the name rules)
    std::string path;  // "/dev/shm/ipc." + name
    // From fstat (or lstat when the file could not be opened): false if even
    // that failed.
    bool has_stat = false;
    uid_t owner = 0;
    gid_t group = 0;
    mode_t mode = 0;         // permission bits (07777)
    std::uint64_t size = 0;  // bytes
    // Set for a valid channel; then `problem` is empty.
    std::optional<ChannelInfo> info;
    // Why it is not a valid channel: one line, no trailing period.
    std::string problem;
    // Set when the file could not be read at all: EACCES (no read
    // permission), ELOOP (a symbolic link), ... `problem` says so too.
    std::error_code error;

    bool valid() const noexcept { return info.has_value(); }
};

// Every /dev/shm/ipc.* file, sorted by name. Files that vanish while being
// looked at are left out. Throws std::system_error only if /dev/shm itself
// cannot be read.
std::vector<ChannelEntry> list_named_channels();

// The file of channel NAME. Throws std::system_error: errc::invalid_name if
// NAME breaks the channel name rules, ENOENT if there is no such file. Every
// other failure is reported in the entry (`problem`, `error`).
ChannelEntry inspect_named_channel(std::string_view name);

}  // namespace ipc
