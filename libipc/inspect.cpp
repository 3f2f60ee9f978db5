// libipc/inspect.cpp - read-only inspection of named channels (ipc/inspect.hpp).
//
// Nothing here maps a segment or trusts a byte of it: the control block is
// copied out with pread(2) and decoded field by field (offsetof into the
// shm_layout.hpp structs), and every check below runs on that private copy,
// so a writer racing with us can make the report wrong but cannot make it
// crash or read out of bounds.
#include "ipc/inspect.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>

#include "sys.hpp"

namespace ipc {
namespace {

constexpr const char* shm_dir = "/dev/shm";
constexpr std::string_view file_prefix = "ipc.";

// The control block (header, index and wait lines), as bytes.
using ControlBytes = std::byte[sizeof(shm::ChannelControl)];

template <class T>
T field(const ControlBytes& b, std::size_t offset) noexcept {
    T v;
    std::memcpy(&v, b + offset, sizeof v);
    return v;
}

// Offsets of the fields within the control block. The atomics are standard
// layout with the size of their value (shm_layout.hpp asserts both).
constexpr std::size_t header_at = offsetof(shm::ChannelControl, header);
constexpr std::size_t magic_at = header_at + offsetof(shm::ChannelHeader, magic);
constexpr std::size_t version_at = header_at + offsetof(shm::ChannelHeader, version);
constexpr std::size_t kind_at = header_at + offsetof(shm::ChannelHeader, kind);
constexpr std::size_t capacity_at = header_at + offsetof(shm::ChannelHeader, capacity);
constexpr std::size_t slot_size_at = header_at + offsetof(shm::ChannelHeader, slot_size);
constexpr std::size_t slots_offset_at = header_at + offsetof(shm::ChannelHeader, slots_offset);
constexpr std::size_t total_size_at = header_at + offsetof(shm::ChannelHeader, total_size);
constexpr std::size_t creator_pid_at = header_at + offsetof(shm::ChannelHeader, creator_pid);
constexpr std::size_t creator_uid_at = header_at + offsetof(shm::ChannelHeader, creator_uid);
constexpr std::size_t closed_at = header_at + offsetof(shm::ChannelHeader, closed);
constexpr std::size_t slot_count_at = header_at + offsetof(shm::ChannelHeader, slot_count);
constexpr std::size_t tail_at = offsetof(shm::ChannelControl, tail) + offsetof(shm::IndexLine, value);
constexpr std::size_t head_at = offsetof(shm::ChannelControl, head) + offsetof(shm::IndexLine, value);
constexpr std::size_t not_empty_seq_at = offsetof(shm::ChannelControl, not_empty) + offsetof(shm::WaitLine, seq);
constexpr std::size_t not_empty_waiters_at =
    offsetof(shm::ChannelControl, not_empty) + offsetof(shm::WaitLine, waiters);
constexpr std::size_t not_full_seq_at = offsetof(shm::ChannelControl, not_full) + offsetof(shm::WaitLine, seq);
constexpr std::size_t not_full_waiters_at =
    offsetof(shm::ChannelControl, not_full) + offsetof(shm::WaitLine, waiters);

static_assert(sizeof(std::atomic<std::uint64_t>) == 8 && sizeof(std::atomic<std::uint32_t>) == 4,
              "fields are decoded as plain integers of the atomics' size");
static_assert(sizeof(shm::ChannelControl) == shm::slots_offset, "the control block is all that is read");

// The channel name rules of named.cpp, through the public check.
bool valid_channel_name(std::string_view name) {
    try {
        (void)Channel::shm_path(name);
        return true;
    } catch (const std::system_error&) {
        return false;
    }
}

void take_stat(ChannelEntry& e, const struct stat& st) {
    e.has_stat = true;
    e.owner = st.st_uid;
    e.group = st.st_gid;
    e.mode = st.st_mode & 07777;
    e.size = st.st_size < 0 ? 0 : static_cast<std::uint64_t>(st.st_size);
}

std::string file_type(mode_t m) {
    if (S_ISLNK(m)) return "a symbolic link (not followed)";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
    return "not a regular file";
}

// Checks the header in `b` (`have` bytes of it were read from a file of
// `size` bytes) and fills `e.info`, or says what is wrong in `e.problem`.
// The same checks, in the same order, as Channel::open_in's validation.
void decode(ChannelEntry& e, const ControlBytes& b, std::size_t have, std::uint64_t size) {
    const auto magic = field<std::uint64_t>(b, magic_at);
    if (magic == 0) {
        e.problem = "not initialised (its creator has not finished, or died while creating it)";
        return;
    }
    if (magic != shm::channel_magic) {
        e.problem = "bad magic";
        return;
    }
    const auto version = field<std::uint32_t>(b, version_at);
    if (version != shm::layout_version) {
        e.problem = "version " + std::to_string(version) + " (this libipc knows " +
                    std::to_string(shm::layout_version) + ")";
        return;
    }
    const auto kind = field<std::uint32_t>(b, kind_at);
    const auto capacity = field<std::uint32_t>(b, capacity_at);
    const auto slot_count = field<std::uint32_t>(b, slot_count_at);
    const auto slot_size = field<std::uint32_t>(b, slot_size_at);
    const auto slots_offset = field<std::uint64_t>(b, slots_offset_at);
    const auto total_size = field<std::uint64_t>(b, total_size_at);
    if (kind != shm::kind_spsc && kind != shm::kind_mpmc) {
        e.problem = "bad geometry: kind " + std::to_string(kind) + " (neither spsc nor mpmc)";
        return;
    }
    if (capacity == 0 || capacity > shm::max_capacity) {
        e.problem = "bad geometry: capacity " + std::to_string(capacity) + " (1 to " +
                    std::to_string(shm::max_capacity) + ")";
        return;
    }
    if (slot_count != shm::slot_count_for(capacity) || slot_size != shm::slot_size_for(kind) ||
        slots_offset != shm::slots_offset || total_size != shm::channel_bytes(kind, slot_count)) {
        e.problem = "bad geometry: " + std::to_string(slot_count) + " slots of " + std::to_string(slot_size) +
                    " bytes at " + std::to_string(slots_offset) + ", " + std::to_string(total_size) +
                    " bytes in all, for capacity " + std::to_string(capacity);
        return;
    }
    if (total_size > size) {
        e.problem = "truncated: " + std::to_string(size) + " bytes, its header says " + std::to_string(total_size);
        return;
    }
    if (have < sizeof(ControlBytes)) {  // shrunk between fstat and pread
        e.problem = "truncated: " + std::to_string(have) + " bytes";
        return;
    }

    ChannelInfo i;
    i.kind = static_cast<ChannelKind>(kind);
    i.version = version;
    i.capacity = capacity;
    i.slot_count = slot_count;
    i.slot_size = slot_size;
    i.slots_offset = slots_offset;
    i.total_size = total_size;
    i.creator_pid = field<std::uint32_t>(b, creator_pid_at);
    i.creator_uid = field<std::uint32_t>(b, creator_uid_at);
    i.closed = field<std::uint32_t>(b, closed_at) != 0;
    i.tail = field<std::uint64_t>(b, tail_at);
    i.head = field<std::uint64_t>(b, head_at);
    // As Channel::stats(): a head ahead of the tail (a racing copy, or a
    // broken ring) reads as empty, more than capacity as full.
    const std::uint64_t d = i.tail - i.head;
    i.depth = static_cast<std::int64_t>(d) < 0 ? 0 : std::min<std::uint64_t>(d, capacity);
    i.sleeping_receivers = field<std::uint32_t>(b, not_empty_waiters_at);
    i.sleeping_senders = field<std::uint32_t>(b, not_full_waiters_at);
    i.not_empty_seq = field<std::uint32_t>(b, not_empty_seq_at);
    i.not_full_seq = field<std::uint32_t>(b, not_full_seq_at);
    e.info = i;
}

// Looks at `file` (ipc.NAME) in the directory `dirfd`. nullopt if it does
// not exist (any more).
std::optional<ChannelEntry> inspect_at(int dirfd, std::string_view name) {
    const std::string file = std::string(file_prefix) + std::string(name);
    ChannelEntry e;
    e.name = std::string(name);
    e.path = std::string(shm_dir) + "/" + file;

    // lstat first: only a regular file is ever opened (opening a FIFO would
    // block, opening a device could have effects).
    struct stat st {};
    if (::fstatat(dirfd, file.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return std::nullopt;
        e.error = {errno, std::generic_category()};
        e.problem = "cannot stat it: " + e.error.message();
        return e;
    }
    take_stat(e, st);
    if (!valid_channel_name(name)) {
        e.problem = "invalid channel name (1-200 characters of A-Z a-z 0-9 . _ - not starting with '.')";
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        e.problem = file_type(st.st_mode);
        if (S_ISLNK(st.st_mode)) e.error = {ELOOP, std::generic_category()};
        return e;
    }

    // O_NONBLOCK: should the file have been swapped for a FIFO since the
    // lstat, the open must not wait for a writer; O_NOFOLLOW likewise for a
    // symbolic link.
    detail::UniqueFd fd(detail::retry_eintr(
        [&] { return ::openat(dirfd, file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC); }));
    if (!fd) {
        if (errno == ENOENT) return std::nullopt;
        e.error = {errno, std::generic_category()};
        if (errno == EACCES || errno == EPERM)
            e.problem = "permission denied: its mode does not let you read it";
        else if (errno == ELOOP)
            e.problem = "a symbolic link (not followed)";
        else
            e.problem = "cannot open it: " + e.error.message();
        return e;
    }
    if (::fstat(fd.get(), &st) != 0) {
        e.error = {errno, std::generic_category()};
        e.problem = "cannot stat it: " + e.error.message();
        return e;
    }
    take_stat(e, st);
    if (!S_ISREG(st.st_mode)) {
        e.problem = file_type(st.st_mode);
        return e;
    }
    if (e.size < sizeof(shm::ChannelHeader)) {
        e.problem = "truncated: " + std::to_string(e.size) + (e.size == 1 ? " byte" : " bytes");
        return e;
    }

    alignas(shm::cache_line) ControlBytes bytes{};
    std::size_t have = 0;
    while (have < sizeof bytes) {
        const ssize_t n = detail::retry_eintr(
            [&] { return ::pread(fd.get(), bytes + have, sizeof bytes - have, static_cast<off_t>(have)); });
        if (n < 0) {
            e.error = {errno, std::generic_category()};
            e.problem = "cannot read it: " + e.error.message();
            return e;
        }
        if (n == 0) break;
        have += static_cast<std::size_t>(n);
    }
    if (have < sizeof(shm::ChannelHeader)) {
        e.problem = "truncated: " + std::to_string(have) + (have == 1 ? " byte" : " bytes");
        return e;
    }
    decode(e, bytes, have, e.size);
    return e;
}

detail::UniqueFd open_shm_dir() {
    detail::UniqueFd dir(detail::retry_eintr([] { return ::open(shm_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); }));
    if (!dir) throw detail::errno_error(std::string("open ") + shm_dir + " to look for channels");
    return dir;
}

}  // namespace

std::vector<ChannelEntry> list_named_channels() {
    detail::UniqueFd dir = open_shm_dir();
    // fdopendir takes its own descriptor; ours stays for the openat calls.
    const int listing = ::fcntl(dir.get(), F_DUPFD_CLOEXEC, 0);
    if (listing < 0) throw detail::errno_error(std::string("read ") + shm_dir);
    std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(listing), ::closedir);
    if (!d) {
        const int err = errno;
        ::close(listing);
        throw detail::errno_error(std::string("read ") + shm_dir, err);
    }
    std::vector<std::string> names;
    for (;;) {
        errno = 0;
        const dirent* de = ::readdir(d.get());
        if (de == nullptr) {
            if (errno != 0) throw detail::errno_error(std::string("read ") + shm_dir);
            break;
        }
        const std::string_view file(de->d_name);
        if (file.size() >= file_prefix.size() && file.substr(0, file_prefix.size()) == file_prefix)
            names.emplace_back(file.substr(file_prefix.size()));
    }
    std::sort(names.begin(), names.end());
    std::vector<ChannelEntry> out;
    out.reserve(names.size());
    for (const auto& n : names)
        if (auto e = inspect_at(dir.get(), n)) out.push_back(std::move(*e));
    return out;
}

ChannelEntry inspect_named_channel(std::string_view name) {
    const std::string path = Channel::shm_path(name);  // throws errc::invalid_name
    detail::UniqueFd dir = open_shm_dir();
    auto e = inspect_at(dir.get(), name);
    if (!e)
        throw std::system_error(ENOENT, std::generic_category(),
                                "channel '" + std::string(name) + "' (" + path + "): no such channel");
    return std::move(*e);
}

}  // namespace ipc
