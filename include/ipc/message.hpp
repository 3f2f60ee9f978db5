// ipc/message.hpp - the fixed-format 64-byte IPC message.
//
// Every ring in this project carries exactly one type: ipc::Message, one cache
// line, in the style of an L4 IPC message. Word 0 is the tag; words 1..7 are
// message registers (plain 64-bit words). Nothing variable-length ever crosses
// a ring: a message is copied into a slot and copied out again, so a peer that
// rewrites a slot after publishing it can only change its own message.
//
// Tag layout (bit 0 is the least significant bit of word 0):
//
//   bits  0..3   words   number of message registers in use (0..7)
//   bits  4..15  flags   12 flag bits, meaning chosen by the protocol
//   bits 16..31  -       reserved, zero
//   bits 32..63  label   the operation or message kind
//
// docs/protocol.md shows the byte layout; the static_asserts below check it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

namespace ipc {

inline constexpr std::size_t message_size = 64;
inline constexpr std::size_t message_registers = 7;

struct alignas(64) Message {
    std::uint64_t tag = 0;
    std::array<std::uint64_t, message_registers> mr{};

    static constexpr std::uint64_t words_mask = 0xF;
    static constexpr unsigned flags_shift = 4;
    static constexpr std::uint64_t flags_mask = 0xFFF;
    static constexpr unsigned label_shift = 32;

    // Builds a tag word. `words` is clamped to message_registers by the caller
    // contract; make() below checks it.
    static constexpr std::uint64_t make_tag(std::uint32_t label, unsigned words,
                                            unsigned flags = 0) noexcept {
        return (std::uint64_t{label} << label_shift) |
               ((std::uint64_t{flags} & flags_mask) << flags_shift) |
               (std::uint64_t{words} & words_mask);
    }

    // A message with `label` and the given registers (at most 7; extra values
    // are ignored and words() reports 7).
    static constexpr Message make(std::uint32_t label,
                                  std::initializer_list<std::uint64_t> regs = {},
                                  unsigned flags = 0) noexcept {
        Message m;
        unsigned n = 0;
        for (auto v : regs) {
            if (n == message_registers) break;
            m.mr[n++] = v;
        }
        m.tag = make_tag(label, n, flags);
        return m;
    }

    constexpr std::uint32_t label() const noexcept {
        return static_cast<std::uint32_t>(tag >> label_shift);
    }
    // Number of registers the sender says it used. A value above 7 is possible
    // in a message from an untrusted peer: check valid() before trusting it.
    constexpr unsigned words() const noexcept { return static_cast<unsigned>(tag & words_mask); }
    constexpr unsigned flags() const noexcept {
        return static_cast<unsigned>((tag >> flags_shift) & flags_mask);
    }
    // True when the tag is well formed: words <= 7 and reserved bits zero.
    constexpr bool valid() const noexcept {
        return words() <= message_registers && ((tag >> 16) & 0xFFFF) == 0;
    }
};

static_assert(sizeof(Message) == message_size, "a message is exactly one 64-byte cache line");
static_assert(alignof(Message) == 64, "a message starts on a cache line so a slot never straddles two");
static_assert(offsetof(Message, tag) == 0, "the tag is word 0 (docs/protocol.md)");
static_assert(offsetof(Message, mr) == 8, "message registers are words 1..7 (docs/protocol.md)");
static_assert(std::is_trivially_copyable_v<Message>, "messages are copied into and out of shared memory");
static_assert(std::is_standard_layout_v<Message>, "the byte layout is part of the protocol");

}  // namespace ipc
