// fuzz/segment_fuzz.cpp - opening a channel on a hostile segment, fuzzed.
//
// A channel segment comes from another process (a memfd over SCM_RIGHTS, a
// name in /dev/shm, the ipcd session memfd), so its bytes are untrusted.
// ipc/channel.hpp promises that opening validates the header (errors are
// std::system_error), and that afterwards a peer that scribbles on the
// segment can corrupt only this channel's messages: calls return
// Status::corrupted, never crash, never loop. This target opens the input
// bytes as a segment and drives the data path on it, with a peer's
// scribbles interleaved.
//
// Input format:
//   byte 0        bit 0: map through a memfd (Mapping::create_memfd, then
//                 Channel::from_fd) instead of an exact-size heap buffer
//                 (which lets AddressSanitizer see a read one byte past the
//                 segment); bit 1: the segment is an ipcd session segment
//                 (proto::SessionHeader, then two channels, validated as
//                 ipc::Session::connect() does); bits 2-3: the channel
//                 starts at 64 * n (not a session segment)
//   byte 1        number of operations (% 32)
//   bytes 2..129  32 operations of 4 bytes [op, x, y, z], see run()
//   bytes 130..   the segment
// A session segment's channels are handle 0 (requests) and 1 (replies);
// otherwise both handles open the same channel, like two processes.
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <system_error>

#include "ipc/channel.hpp"
#include "ipc/mapping.hpp"
#include "ipc/message.hpp"
#include "ipc/protocol.hpp"

namespace {

using ipc::Channel;
using ipc::Message;
using ipc::Status;

constexpr std::size_t header_bytes = 130;
constexpr std::size_t max_ops = 32;

[[noreturn]] void violation(const char* what) {
    std::fprintf(stderr, "segment_fuzz: %s\n", what);
    std::abort();
}

bool known(Status s) {
    switch (s) {
        case Status::ok:
        case Status::would_block:
        case Status::timed_out:
        case Status::closed:
        case Status::corrupted: return true;
    }
    return false;
}

// The segment in memory this process owns, exactly `size` bytes.
std::shared_ptr<ipc::Mapping> heap_mapping(const std::uint8_t* data, std::size_t size) {
    void* mem = ::operator new (size, std::align_val_t{64});
    std::memcpy(mem, data, size);
    std::shared_ptr<void> owner(mem, [](void* p) { ::operator delete (p, std::align_val_t{64}); });
    return std::make_shared<ipc::Mapping>(mem, size, -1, std::move(owner));
}

// The segment in a memfd, as another process would hand it over.
std::shared_ptr<ipc::Mapping> memfd_mapping(const std::uint8_t* data, std::size_t size) {
    auto m = ipc::Mapping::create_memfd("segment_fuzz", size, false);
    std::memcpy(m->data(), data, size);
    return m;
}

// As ipc::Session::connect() checks the daemon's session segment.
bool open_session(const std::shared_ptr<ipc::Mapping>& m, Channel (&ch)[2]) {
    namespace proto = ipc::proto;
    if (m->size() < sizeof(proto::SessionHeader)) return false;
    const auto* h = static_cast<const proto::SessionHeader*>(m->data());
    const std::size_t size = m->size();
    if (h->magic != proto::session_magic || h->version != proto::version || h->request_offset >= size ||
        h->reply_offset >= size)
        return false;
    ch[0] = Channel::open_in(m, h->request_offset);
    ch[1] = Channel::open_in(m, h->reply_offset);
    return ch[0].kind() == ipc::ChannelKind::spsc && ch[1].kind() == ipc::ChannelKind::spsc;
}

void run(const std::uint8_t* ops, unsigned nops, const std::shared_ptr<ipc::Mapping>& m, Channel (&ch)[2]) {
    auto* seg = static_cast<std::uint8_t*>(m->data());
    const std::size_t size = m->size();
    Message batch[8];
    for (unsigned i = 0; i < nops; ++i) {
        const std::uint8_t op = ops[4 * i], x = ops[4 * i + 1], y = ops[4 * i + 2], z = ops[4 * i + 3];
        Channel& c = ch[(op >> 4) & 1];
        Message msg = Message::make(x, {y, z});
        switch (op & 15) {
            case 0:
                if (!known(c.try_recv(msg))) violation("try_recv: unknown status");
                break;
            case 1:
                if (!known(c.try_send(msg))) violation("try_send: unknown status");
                break;
            case 2: {
                const ipc::ChannelStats st = c.stats();
                if (st.depth > st.capacity) violation("stats: depth above capacity");
                break;
            }
            case 3:
                (void)c.close();
                if (!c.closed()) violation("close: not closed afterwards");
                if (c.try_send(msg) != Status::closed) violation("close: a send succeeded afterwards");
                break;
            case 4: {
                const std::size_t n = 1 + x % 8;
                const ipc::BatchResult r = c.try_recv_batch(std::span<Message>(batch, n));
                if (r.count > n || (r.status == Status::ok) != (r.count >= 1) || !known(r.status))
                    violation("try_recv_batch: count and status disagree");
                break;
            }
            case 5: {
                const std::size_t n = 1 + x % 8;
                for (std::size_t k = 0; k < n; ++k) batch[k] = Message::make(static_cast<std::uint32_t>(k), {y});
                const ipc::BatchResult r = c.try_send_batch(std::span<const Message>(batch, n));
                if (r.count > n || (r.status == Status::ok && r.count != n) || !known(r.status))
                    violation("try_send_batch: count and status disagree");
                break;
            }
            case 6: (void)c.readable(); break;
            case 7: {
                const Channel::WaitTicket t = c.prepare_recv_wait();
                if (!t.ready) c.finish_recv_wait();
                break;
            }
            case 8:  // a peer writes one byte anywhere
                seg[(std::size_t{x} | std::size_t{y} << 8) % size] = z;
                break;
            case 9: {  // a peer writes an index or a turn: a word in the control lines or the first slots
                static constexpr std::uint64_t values[] = {
                    0, 1, 2, 3, 63, 64, 65, 255, 256, 1u << 24, UINT64_MAX, UINT64_MAX - 1, 1ull << 63, 1ull << 32};
                const std::size_t off = (std::size_t{x} * 8) % (size & ~std::size_t{7});
                if (size >= 8) {
                    const std::uint64_t v = z < 0xF0 ? values[z % std::size(values)] : std::uint64_t{y} << (z & 15);
                    std::memcpy(seg + off, &v, 8);
                }
                break;
            }
            case 10: {  // blocking calls with a deadline already past: must return at once
                c.set_spin(std::chrono::nanoseconds(x & 1 ? 0 : 1000));
                const auto past = ipc::Clock::now() - std::chrono::seconds(1);
                if (y & 1) {
                    if (!known(c.recv_until(msg, past))) violation("recv_until: unknown status");
                } else {
                    if (!known(c.send_until(msg, past))) violation("send_until: unknown status");
                }
                break;
            }
            case 11:  // a fresh handle, as a process that opens the channel now
                try {
                    ch[(op >> 4) & 1] =
                        Channel::open_in(m, static_cast<std::size_t>(reinterpret_cast<const std::byte*>(c.control()) -
                                                                     static_cast<const std::byte*>(m->data())));
                } catch (const std::system_error&) {
                    // A scribbled header is refused; keep the old handle.
                }
                break;
            default: {
                Message out;
                (void)c.try_recv(out);
                if (!known(c.try_send(out))) violation("echo: unknown status");
                break;
            }
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size <= header_bytes) return 0;
    const std::uint8_t flags = data[0];
    const unsigned nops = data[1] % max_ops;
    const std::uint8_t* ops = data + 2;
    const std::uint8_t* seg = data + header_bytes;
    const std::size_t seg_size = size - header_bytes;
    try {
        std::shared_ptr<ipc::Mapping> m;
        Channel ch[2];
        if (flags & 1) {
            auto fdm = memfd_mapping(seg, seg_size);
            if (flags & 2) {
                m = ipc::Mapping::map_fd(fdm->fd());
            } else {
                ch[0] = Channel::from_fd(fdm->fd());
                m = ch[0].mapping();
            }
        } else {
            m = heap_mapping(seg, seg_size);
        }
        if (flags & 2) {
            if (!open_session(m, ch)) return 0;
        } else {
            if (!ch[0].valid()) ch[0] = Channel::open_in(m, 64 * ((flags >> 2) & 3));
            ch[1] = Channel::open_in(m, static_cast<std::size_t>(reinterpret_cast<const std::byte*>(ch[0].control()) -
                                                                 static_cast<const std::byte*>(m->data())));
        }
        run(ops, nops, m, ch);
    } catch (const std::system_error&) {
        // The documented refusal of a segment that is not a usable channel.
    } catch (const std::exception& e) {
        std::fprintf(stderr, "segment_fuzz: open threw something other than std::system_error: %s\n", e.what());
        std::abort();
    }
    return 0;
}
