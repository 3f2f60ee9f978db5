// tests/channel_setup_test.cpp - setting channels up (unit).
//
// Names and /dev/shm paths, create / open / open_or_create / remove of named
// channels and their errors (EEXIST, ENOENT, invalid name, invalid capacity),
// mode bits under a umask, anonymous memfd channels and from_fd, channels
// inside a larger mapping, and validation of crafted segments: each failure
// must carry its own ipc::errc. Also the error category and the message tag.
// (Permission checks across uids need a child process: channel_process_test.)
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstddef>
#include <thread>

#include "channel_test_util.hpp"

namespace ipc::test {
namespace {

constexpr ChannelOptions spsc8{.kind = ChannelKind::spsc, .capacity = 8};
constexpr ChannelOptions mpmc8{.kind = ChannelKind::mpmc, .capacity = 8};

// A message makes the round trip from `tx` to `rx` (two handles, one channel).
void expect_connected(Channel& tx, Channel& rx, std::uint64_t seq) {
    ASSERT_EQ(tx.try_send(make_msg(1, seq)), Status::ok);
    Message m;
    ASSERT_EQ(rx.try_recv(m), Status::ok);
    EXPECT_TRUE(same_bytes(m, make_msg(1, seq)));
}

mode_t mode_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
}

off_t size_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_size;
}

// ---------------------------------------------------------------------------
// Names

TEST(ChannelNames, ShmPathIsDevShmIpcDotName) {
    EXPECT_EQ(Channel::shm_path("abc"), "/dev/shm/ipc.abc");
    EXPECT_EQ(Channel::shm_path("A-b_c.9"), "/dev/shm/ipc.A-b_c.9");
    EXPECT_EQ(Channel::shm_path("x.."), "/dev/shm/ipc.x..");
}

TEST(ChannelNames, CreatedChannelAppearsAtItsShmPath) {
    ScopedName n("path");
    ASSERT_FALSE(n.exists());
    Channel ch = Channel::create(n, spsc8);
    EXPECT_TRUE(n.exists());
    EXPECT_EQ(Channel::shm_path(n), n.path());
}

TEST(ChannelNames, InvalidNamesAreRejectedByEveryCall) {
    const std::string bad[] = {"",      ".hidden", "..",   "a/b",       "../etc", "a b",      "tab\t",
                               "uml\xc3\xa4ut", "star*", std::string("nul\0x", 5), std::string(201, 'a')};
    for (const std::string& name : bad) {
        SCOPED_TRACE("name '" + name + "'");
        const std::string want = err(errc::invalid_name);
        EXPECT_EQ(thrown([&] { (void)Channel::shm_path(name); }), want);
        EXPECT_EQ(thrown([&] { (void)Channel::create(name, spsc8); }), want);
        EXPECT_EQ(thrown([&] { (void)Channel::open(name); }), want);
        EXPECT_EQ(thrown([&] { (void)Channel::open_or_create(name, spsc8); }), want);
        EXPECT_EQ(thrown([&] { (void)Channel::remove(name); }), want);
    }
}

TEST(ChannelNames, NamesOfTwoHundredCharactersWork) {
    std::string name = unique_name("long");
    name.resize(200, 'x');
    struct Cleanup {
        std::string n;
        ~Cleanup() { ::shm_unlink(("ipc." + n).c_str()); }
    } cleanup{name};
    Channel a = Channel::create(name, spsc8);
    Channel b = Channel::open(name);
    expect_connected(a, b, 7);
    EXPECT_TRUE(Channel::remove(name));
    EXPECT_EQ(thrown([&] { (void)Channel::create(name + "y", spsc8); }), err(errc::invalid_name));
}

// ---------------------------------------------------------------------------
// create / open / open_or_create / remove

TEST(NamedChannel, CreateSizesAndInitialisesTheSegment) {
    for (const ChannelOptions& o : {spsc8, mpmc8, ChannelOptions{.kind = ChannelKind::mpmc, .capacity = 1}}) {
        ScopedName n("create");
        Channel ch = Channel::create(n, o);
        EXPECT_EQ(size_of(n.path()), static_cast<off_t>(Channel::bytes_needed(o)));
        EXPECT_EQ(ch.kind(), o.kind);
        EXPECT_EQ(ch.capacity(), o.capacity);
        const auto& h = ch.control()->header;
        EXPECT_EQ(h.magic.load(), shm::channel_magic);
        EXPECT_EQ(h.version, shm::layout_version);
        EXPECT_EQ(h.kind, static_cast<std::uint32_t>(o.kind));
        EXPECT_EQ(h.capacity, o.capacity);
        EXPECT_EQ(h.slot_size, shm::slot_size_for(h.kind));
        EXPECT_EQ(h.slots_offset, shm::slots_offset);
        EXPECT_EQ(h.total_size, shm::channel_bytes(h.kind, o.capacity));
        EXPECT_EQ(h.creator_pid, static_cast<std::uint32_t>(::getpid()));
        EXPECT_EQ(h.creator_uid, static_cast<std::uint32_t>(::getuid()));
        EXPECT_EQ(h.closed.load(), 0u);
        EXPECT_GE(ch.fd(), 0);
        const ChannelStats st = ch.stats();
        EXPECT_EQ(st.kind, o.kind);
        EXPECT_EQ(st.capacity, o.capacity);
        EXPECT_EQ(st.depth, 0u);
        EXPECT_FALSE(st.closed);
    }
}

TEST(NamedChannel, CreateOfAnExistingNameFailsWithEexistAndKeepsTheOriginal) {
    ScopedName n("eexist");
    Channel a = Channel::create(n, mpmc8);
    ASSERT_EQ(a.try_send(make_msg(0, 1)), Status::ok);
    EXPECT_EQ(thrown([&] { (void)Channel::create(n, spsc8); }), err(std::errc::file_exists));
    // The failed create must not have removed or re-initialised the segment.
    ASSERT_TRUE(n.exists());
    Channel b = Channel::open(n);
    EXPECT_EQ(b.kind(), ChannelKind::mpmc);
    Message m;
    ASSERT_EQ(b.try_recv(m), Status::ok);
    EXPECT_TRUE(same_bytes(m, make_msg(0, 1)));
}

TEST(NamedChannel, OpenOfAMissingNameFailsWithEnoent) {
    ScopedName n("enoent");
    EXPECT_EQ(thrown([&] { (void)Channel::open(n); }), err(std::errc::no_such_file_or_directory));
    EXPECT_FALSE(n.exists());
    try {
        (void)Channel::open(n);
    } catch (const std::system_error& e) {
        EXPECT_NE(std::string(e.what()).find(n.str()), std::string::npos) << "the error names the channel: " << e.what();
    }
}

TEST(NamedChannel, OpenSharesTheCreatorsRing) {
    for (const ChannelOptions& o : {spsc8, mpmc8}) {
        ScopedName n("open");
        Channel a = Channel::create(n, o);
        Channel b = Channel::open(n);
        EXPECT_EQ(b.kind(), o.kind);
        EXPECT_EQ(b.capacity(), o.capacity);
        EXPECT_NE(a.control(), b.control()) << "a second, independent mapping";
        expect_connected(a, b, 1);
        expect_connected(a, b, 2);
        ASSERT_EQ(a.try_send(make_msg(1, 3)), Status::ok);
        EXPECT_EQ(b.stats().depth, 1u);
        EXPECT_TRUE(b.close());
        EXPECT_TRUE(a.closed());
        EXPECT_FALSE(a.close());
    }
}

TEST(NamedChannel, OpenOrCreateCreatesWhenAbsent) {
    ScopedName n("ooc-new");
    Channel a = Channel::open_or_create(n, {.kind = ChannelKind::mpmc, .capacity = 4, .mode = 0640});
    EXPECT_TRUE(n.exists());
    EXPECT_EQ(a.kind(), ChannelKind::mpmc);
    EXPECT_EQ(a.capacity(), 4u);
    EXPECT_EQ(mode_of(n.path()), 0640u);
    Channel b = Channel::open(n);
    expect_connected(a, b, 5);
}

TEST(NamedChannel, OpenOrCreateOpensAnExistingChannelIgnoringOptions) {
    ScopedName n("ooc-old");
    Channel a = Channel::create(n, {.kind = ChannelKind::mpmc, .capacity = 16, .mode = 0600});
    ASSERT_EQ(a.try_send(make_msg(2, 9)), Status::ok);
    Channel b = Channel::open_or_create(n, {.kind = ChannelKind::spsc, .capacity = 2, .mode = 0666});
    EXPECT_EQ(b.kind(), ChannelKind::mpmc);
    EXPECT_EQ(b.capacity(), 16u);
    EXPECT_EQ(mode_of(n.path()), 0600u);
    Message m;
    ASSERT_EQ(b.try_recv(m), Status::ok) << "the buffered message survives: not re-initialised";
    EXPECT_TRUE(same_bytes(m, make_msg(2, 9)));
}

TEST(NamedChannel, OpenOrCreateWaitsForACreatorThatIsStillInitialising) {
    // A segment whose magic is still zero is a creator between truncate and
    // its release store: open_or_create retries until the magic appears.
    ScopedName n("ooc-wait");
    const auto img = channel_image(spsc8);
    write_segment(n.str(), img);
    const int fd = ::open(n.path().c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    auto peer = Mapping::map_fd(fd);
    ::close(fd);
    auto* hdr = static_cast<shm::ChannelHeader*>(peer->data());
    hdr->magic.store(0);
    ASSERT_EQ(thrown([&] { (void)Channel::open(n); }), err(errc::not_initialized));
    std::thread creator([&] { hdr->magic.store(shm::channel_magic, std::memory_order_release); });
    Channel ch = Channel::open_or_create(n, mpmc8);
    creator.join();
    EXPECT_EQ(ch.kind(), ChannelKind::spsc) << "opened the other creator's channel";
    EXPECT_EQ(ch.capacity(), 8u);
}

TEST(NamedChannel, OpenOrCreateGivesUpOnASegmentThatNeverFinishes) {
    ScopedName n("ooc-stuck");
    write_segment(n.str(), std::vector<std::byte>(4096));
    const auto start = Clock::now();
    EXPECT_EQ(thrown([&] { (void)Channel::open_or_create(n, spsc8); }), err(errc::not_initialized));
    const auto took = Clock::now() - start;
    EXPECT_GE(took, 1s) << "retried for a while (the creator may be slow)";
    EXPECT_LT(took, 10s) << "but gave up";
    EXPECT_TRUE(n.exists()) << "somebody else's segment is left alone";
}

TEST(NamedChannel, OpenOrCreateReportsAForeignSegmentAtOnce) {
    ScopedName n("ooc-foreign");
    write_segment(n.str(), std::vector<std::byte>(4096, std::byte{0xAB}));
    EXPECT_EQ(thrown([&] { (void)Channel::open_or_create(n, spsc8); }), err(errc::not_a_channel));
    EXPECT_TRUE(n.exists());
}

TEST(NamedChannel, RemoveUnlinksTheNameButOpenHandlesKeepWorking) {
    ScopedName n("remove");
    Channel a = Channel::create(n, mpmc8);
    Channel b = Channel::open(n);
    EXPECT_TRUE(Channel::remove(n));
    EXPECT_FALSE(n.exists());
    EXPECT_FALSE(Channel::remove(n)) << "a second remove finds nothing";
    EXPECT_EQ(thrown([&] { (void)Channel::open(n); }), err(std::errc::no_such_file_or_directory));
    expect_connected(a, b, 1);
    // The name is free again: a new channel there is a different ring.
    Channel c = Channel::create(n, spsc8);
    ASSERT_EQ(a.try_send(make_msg(1, 2)), Status::ok);
    Message m;
    EXPECT_EQ(c.try_recv(m), Status::would_block);
    EXPECT_EQ(b.try_recv(m), Status::ok);
}

TEST(NamedChannel, RemoveOfANameNeverCreatedReturnsFalse) {
    ScopedName n("never");
    EXPECT_FALSE(Channel::remove(n));
}

TEST(NamedChannel, ModeBitsAreHonouredDespiteTheUmask) {
    struct RestoreUmask {
        mode_t old = ::umask(0077);
        ~RestoreUmask() { ::umask(old); }
    } restore;
    for (mode_t mode : {0600, 0640, 0644, 0660, 0666, 0604}) {
        SCOPED_TRACE("mode " + std::to_string(mode));
        ScopedName n("mode");
        Channel a = Channel::create(n, {.kind = ChannelKind::spsc, .capacity = 2, .mode = mode});
        EXPECT_EQ(mode_of(n.path()), mode);
        ScopedName m("mode-ooc");
        Channel b = Channel::open_or_create(m, {.kind = ChannelKind::mpmc, .capacity = 2, .mode = mode});
        EXPECT_EQ(mode_of(m.path()), mode);
    }
    ::umask(0);
    ScopedName n("mode-0");
    Channel c = Channel::create(n, {.kind = ChannelKind::spsc, .capacity = 2, .mode = 0600});
    EXPECT_EQ(mode_of(n.path()), 0600u) << "a permissive umask does not widen the mode either";
}

TEST(NamedChannel, OptionsDefaultToSpsc256Mode0600) {
    const ChannelOptions o;
    EXPECT_EQ(o.kind, ChannelKind::spsc);
    EXPECT_EQ(o.capacity, 256u);
    EXPECT_EQ(o.mode, 0600u);
    ScopedName n("defaults");
    Channel ch = Channel::create(n);
    EXPECT_EQ(ch.kind(), ChannelKind::spsc);
    EXPECT_EQ(ch.capacity(), 256u);
    EXPECT_EQ(mode_of(n.path()), 0600u);
}

// ---------------------------------------------------------------------------
// Capacity and kind

TEST(ChannelOptionsCheck, InvalidCapacityIsRejectedEverywhere) {
    for (std::uint32_t cap : {0u, (1u << 24) + 1, 1u << 25, 1u << 31, 0xFFFFFFFFu}) {
        for (ChannelKind kind : {ChannelKind::spsc, ChannelKind::mpmc}) {
            SCOPED_TRACE("capacity " + std::to_string(cap));
            const ChannelOptions o{.kind = kind, .capacity = cap};
            const std::string want = err(errc::invalid_capacity);
            EXPECT_EQ(thrown([&] { (void)Channel::bytes_needed(o); }), want);
            EXPECT_EQ(thrown([&] { (void)Channel::create_anonymous(o); }), want);
            auto m = Mapping::create_memfd("cap", 1 << 16);
            EXPECT_EQ(thrown([&] { (void)Channel::create_in(m, 0, o); }), want);
            ScopedName n("cap");
            EXPECT_EQ(thrown([&] { (void)Channel::create(n, o); }), want);
            EXPECT_FALSE(n.exists()) << "a refused create leaves no segment behind";
            EXPECT_EQ(thrown([&] { (void)Channel::open_or_create(n, o); }), want);
            EXPECT_FALSE(n.exists());
        }
    }
}

TEST(ChannelOptionsCheck, EveryCapacityFromOneToTwoToTheTwentyFourIsValid) {
    // Go's make(chan T, n): any n >= 1. Storage is rounded up to a power of
    // two (slot_count) so a slot is still index & mask.
    for (std::uint32_t cap : {1u, 2u, 3u, 4u, 5u, 7u, 100u, 255u, 256u, 257u, 4096u, (1u << 24) - 1, 1u << 24}) {
        SCOPED_TRACE("capacity " + std::to_string(cap));
        std::size_t slots = 1;
        while (slots < cap) slots <<= 1;
        EXPECT_EQ(shm::slot_count_for(cap), slots);
        EXPECT_EQ(Channel::bytes_needed({.kind = ChannelKind::spsc, .capacity = cap}), 320 + slots * 64);
        EXPECT_EQ(Channel::bytes_needed({.kind = ChannelKind::mpmc, .capacity = cap}), 320 + slots * 128);
        if (cap > 4096) continue;  // no need to map the big ones
        for (ChannelKind kind : {ChannelKind::spsc, ChannelKind::mpmc}) {
            Channel ch = Channel::create_anonymous({.kind = kind, .capacity = cap});
            EXPECT_EQ(ch.capacity(), cap);
            EXPECT_EQ(ch.stats().capacity, cap);
            EXPECT_EQ(ch.control()->header.capacity, cap);
            EXPECT_EQ(ch.control()->header.slot_count, slots);
            EXPECT_EQ(ch.mapping()->size(), Channel::bytes_needed({.kind = kind, .capacity = cap}));
        }
    }
}

TEST(ChannelOptionsCheck, ANamedChannelKeepsItsCapacity) {
    ScopedName n("cap3");
    Channel a = Channel::create(n, {.kind = ChannelKind::mpmc, .capacity = 3});
    Channel b = Channel::open(n);
    EXPECT_EQ(b.capacity(), 3u);
    EXPECT_EQ(size_of(n.path()), static_cast<off_t>(320 + 4 * 128));
}

TEST(ChannelOptionsCheck, UnknownKindIsRejected) {
    for (std::uint32_t k : {0u, 3u, 0xFFFFFFFFu}) {
        const ChannelOptions o{.kind = static_cast<ChannelKind>(k), .capacity = 8};
        EXPECT_EQ(thrown([&] { (void)Channel::create_anonymous(o); }), err(errc::bad_geometry));
        ScopedName n("kind");
        EXPECT_EQ(thrown([&] { (void)Channel::create(n, o); }), err(errc::bad_geometry));
        EXPECT_FALSE(n.exists());
    }
}

// ---------------------------------------------------------------------------
// Anonymous channels and from_fd

TEST(AnonymousChannel, IsASealedCloexecMemfdOfTheRightSize) {
    for (const ChannelOptions& o : {spsc8, mpmc8}) {
        Channel ch = Channel::create_anonymous(o);
        const int fd = ch.fd();
        ASSERT_GE(fd, 0);
        EXPECT_EQ(ch.fd(), ch.mapping()->fd());
        EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);
        const int seals = ::fcntl(fd, F_GET_SEALS);
        EXPECT_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
        EXPECT_NE(::ftruncate(fd, 64), 0) << "a peer cannot shrink it";
        EXPECT_EQ(errno, EPERM);
        struct stat st {};
        ASSERT_EQ(::fstat(fd, &st), 0);
        EXPECT_EQ(static_cast<std::size_t>(st.st_size), Channel::bytes_needed(o));
        EXPECT_EQ(ch.kind(), o.kind);
        EXPECT_EQ(ch.capacity(), o.capacity);
    }
}

TEST(AnonymousChannel, FromFdSharesTheRingAndDuplicatesTheDescriptor) {
    for (const ChannelOptions& o : {spsc8, mpmc8}) {
        Channel a = Channel::create_anonymous(o);
        const int copy = ::fcntl(a.fd(), F_DUPFD_CLOEXEC, 0);
        ASSERT_GE(copy, 0);
        Channel b = Channel::from_fd(copy);
        EXPECT_NE(b.fd(), copy) << "from_fd keeps its own duplicate";
        EXPECT_TRUE(::fcntl(b.fd(), F_GETFD) & FD_CLOEXEC);
        ASSERT_EQ(::close(copy), 0);
        EXPECT_EQ(b.kind(), o.kind);
        EXPECT_EQ(b.capacity(), o.capacity);
        expect_connected(a, b, 1);
        expect_connected(b, a, 2);
    }
}

TEST(AnonymousChannel, FromFdRejectsDescriptorsThatAreNotSharedMemory) {
    EXPECT_EQ(thrown([] { (void)Channel::from_fd(-1); }), err(std::errc::bad_file_descriptor));
    Pipe p;
    EXPECT_EQ(thrown([&] { (void)Channel::from_fd(p.read_fd()); }), err(std::errc::invalid_argument));
    const int empty = memfd_with({});
    EXPECT_EQ(thrown([&] { (void)Channel::from_fd(empty); }), err(std::errc::invalid_argument));
    ::close(empty);
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    EXPECT_EQ(thrown([&] { (void)Channel::from_fd(null); }), err(std::errc::invalid_argument));
    ::close(null);
}

TEST(AnonymousChannel, FromFdNeedsAWritableDescriptor) {
    ScopedName n("rdonly");
    Channel a = Channel::create(n, spsc8);
    const int ro = ::open(n.path().c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(ro, 0);
    EXPECT_EQ(thrown([&] { (void)Channel::from_fd(ro); }), err(std::errc::permission_denied));
    ::close(ro);
}

TEST(AnonymousChannel, NamedChannelsCanBeOpenedFromTheirDescriptor) {
    ScopedName n("named-fd");
    Channel a = Channel::create(n, mpmc8);
    Channel b = Channel::from_fd(a.fd());
    expect_connected(a, b, 3);
}

// ---------------------------------------------------------------------------
// Mappings (ipc/mapping.hpp)

TEST(SharedMapping, CreateMemfdIsZeroFilledCloexecAndSealedOnRequest) {
    EXPECT_EQ(thrown([] { (void)Mapping::create_memfd("zero", 0); }), err(std::errc::invalid_argument));
    for (bool seal : {false, true}) {
        auto m = Mapping::create_memfd("plain", 10000, seal);
        ASSERT_NE(m->data(), nullptr);
        EXPECT_EQ(m->size(), 10000u);
        EXPECT_TRUE(::fcntl(m->fd(), F_GETFD) & FD_CLOEXEC);
        const auto* p = static_cast<const unsigned char*>(m->data());
        EXPECT_EQ(std::count(p, p + m->size(), 0), 10000);
        const int seals = ::fcntl(m->fd(), F_GET_SEALS);
        EXPECT_EQ((seals & F_SEAL_SHRINK) != 0, seal);
        EXPECT_EQ((seals & F_SEAL_GROW) != 0, seal);
    }
}

TEST(SharedMapping, MapFdSharesTheBytesThroughItsOwnDescriptor) {
    auto a = Mapping::create_memfd("share", 8192);
    auto b = Mapping::map_fd(a->fd());
    EXPECT_EQ(b->size(), 8192u);
    EXPECT_NE(b->fd(), a->fd());
    EXPECT_NE(b->data(), a->data()) << "a second mapping of the same pages";
    static_cast<char*>(a->data())[4000] = 'x';
    EXPECT_EQ(static_cast<const char*>(b->data())[4000], 'x');
    EXPECT_EQ(thrown([] { (void)Mapping::map_fd(-1); }), err(std::errc::bad_file_descriptor));
    const int empty = memfd_with({});
    EXPECT_EQ(thrown([&] { (void)Mapping::map_fd(empty); }), err(std::errc::invalid_argument));
    ::close(empty);
}

TEST(SharedMapping, AnAdoptedMappingLeavesUnmappingToItsOwner) {
    auto inner = Mapping::create_memfd("owned", 4096);
    bool released = false;
    {
        std::shared_ptr<void> owner(inner.get(), [&](void*) { released = true; });
        Mapping adopted(inner->data(), inner->size(), inner->fd(), owner);
        owner.reset();
        EXPECT_EQ(adopted.data(), inner->data());
        EXPECT_EQ(adopted.fd(), inner->fd());
        EXPECT_FALSE(released);
    }
    EXPECT_TRUE(released) << "the owner is released with the mapping";
    EXPECT_EQ(::fcntl(inner->fd(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC) << "and the descriptor was not closed";
    static_cast<char*>(inner->data())[0] = 1;  // still mapped (ASan would catch an unmap)
}

// ---------------------------------------------------------------------------
// Channels inside a larger mapping

TEST(ChannelInMapping, TwoChannelsShareOneSegment) {
    const ChannelOptions req{.kind = ChannelKind::spsc, .capacity = 4};
    const ChannelOptions rep{.kind = ChannelKind::mpmc, .capacity = 2};
    const std::size_t off = Channel::bytes_needed(req);
    ASSERT_EQ(off % 64, 0u);
    auto m = Mapping::create_memfd("two", off + Channel::bytes_needed(rep));
    Channel a = Channel::create_in(m, 0, req);
    Channel b = Channel::create_in(m, off, rep);
    EXPECT_EQ(a.mapping(), m);
    EXPECT_EQ(b.mapping(), m);
    // The peer maps the same descriptor and opens both at their offsets.
    auto peer = Mapping::map_fd(m->fd());
    Channel pa = Channel::open_in(peer, 0);
    Channel pb = Channel::open_in(peer, off);
    EXPECT_EQ(pa.kind(), ChannelKind::spsc);
    EXPECT_EQ(pa.capacity(), 4u);
    EXPECT_EQ(pb.kind(), ChannelKind::mpmc);
    EXPECT_EQ(pb.capacity(), 2u);
    expect_connected(a, pa, 1);
    expect_connected(pb, b, 2);
    EXPECT_TRUE(pa.close());
    EXPECT_TRUE(a.closed());
    EXPECT_FALSE(b.closed()) << "closing one leaves the other open";
}

TEST(ChannelInMapping, CreateInChecksOffsetAndRoom) {
    const std::size_t need = Channel::bytes_needed(spsc8);
    auto m = Mapping::create_memfd("room", need + 64);
    const std::string einval = err(std::errc::invalid_argument);
    EXPECT_EQ(thrown([&] { (void)Channel::create_in(nullptr, 0, spsc8); }), einval);
    EXPECT_EQ(thrown([&] { (void)Channel::create_in(m, 32, spsc8); }), einval);
    EXPECT_EQ(thrown([&] { (void)Channel::create_in(m, 128, spsc8); }), einval) << "does not fit";
    EXPECT_EQ(thrown([&] { (void)Channel::create_in(m, need + 128, spsc8); }), einval) << "past the end";
    EXPECT_EQ(thrown([&] { (void)Channel::create_in(m, 64, spsc8); }), "no exception") << "fits exactly";
}

TEST(ChannelInMapping, OpenInChecksOffsetAndContents) {
    auto m = Mapping::create_memfd("open-in", 4096);
    const std::string einval = err(std::errc::invalid_argument);
    EXPECT_EQ(thrown([&] { (void)Channel::open_in(nullptr, 0); }), einval);
    EXPECT_EQ(thrown([&] { (void)Channel::open_in(m, 8); }), einval);
    EXPECT_EQ(thrown([&] { (void)Channel::open_in(m, 4096); }), einval);
    EXPECT_EQ(thrown([&] { (void)Channel::open_in(m, 0); }), err(errc::not_initialized)) << "zero-filled";
    EXPECT_EQ(thrown([&] { (void)Channel::open_in(m, 4096 - 64); }), err(errc::not_initialized));
    Channel::create_in(m, 1024, {.kind = ChannelKind::spsc, .capacity = 2});
    EXPECT_EQ(thrown([&] { (void)Channel::open_in(m, 1024); }), "no exception");
}

// ---------------------------------------------------------------------------
// Validation of what a segment holds (crafted byte by byte)

struct Crafted {
    const char* what;
    std::vector<std::byte> bytes;
    errc expect;
};

std::vector<Crafted> crafted_segments() {
    using H = shm::ChannelHeader;
    std::vector<Crafted> v;
    for (const ChannelOptions& o : {spsc8, mpmc8}) {
        const auto good = channel_image(o);
        auto with = [&](const char* what, auto patch, errc e) {
            auto b = good;
            patch(b);
            v.push_back({what, std::move(b), e});
        };
        with("garbage", [](auto& b) { std::fill(b.begin(), b.end(), std::byte{0xAB}); }, errc::not_a_channel);
        with("wrong magic", [](auto& b) { poke<std::uint64_t>(b, offsetof(H, magic), 0x4C454E4E414843ull); },
             errc::not_a_channel);
        with("version 2", [](auto& b) { poke<std::uint32_t>(b, offsetof(H, version), 2); }, errc::version_mismatch);
        with("version 0", [](auto& b) { poke<std::uint32_t>(b, offsetof(H, version), 0); }, errc::version_mismatch);
        with("kind 0", [](auto& b) { poke<std::uint32_t>(b, offsetof(H, kind), 0); }, errc::bad_geometry);
        with("kind 3", [](auto& b) { poke<std::uint32_t>(b, offsetof(H, kind), 3); }, errc::bad_geometry);
        with("other kind", [&](auto& b) { poke<std::uint32_t>(b, offsetof(H, kind), o.kind == ChannelKind::spsc ? 2 : 1); },
             errc::bad_geometry);
        with("capacity 3 in an 8-slot segment", [](auto& b) { poke<std::uint32_t>(b, offsetof(H, capacity), 3); },
             errc::bad_geometry);
        with("capacity 0", [](auto& b) { poke<std::uint32_t>(b, offsetof(H, capacity), 0); }, errc::bad_geometry);
        with("capacity 2^25", [&](auto& b) {
                 poke<std::uint32_t>(b, offsetof(H, capacity), 1u << 25);
                 poke<std::uint32_t>(b, offsetof(H, slot_count), 1u << 25);
                 poke<std::uint64_t>(b, offsetof(H, total_size), shm::channel_bytes(static_cast<std::uint32_t>(o.kind), 1u << 25));
             },
             errc::bad_geometry);
        with("capacity 4 in an 8-slot segment", [](auto& b) { poke<std::uint32_t>(b, offsetof(H, capacity), 4); },
             errc::bad_geometry);
        with("slot count 16", [](auto& b) { poke<std::uint32_t>(b, offsetof(H, slot_count), 16); }, errc::bad_geometry);
        with("slot count 0", [](auto& b) { poke<std::uint32_t>(b, offsetof(H, slot_count), 0); }, errc::bad_geometry);
        with("slot size 96", [](auto& b) { poke<std::uint32_t>(b, offsetof(H, slot_size), 96); }, errc::bad_geometry);
        with("slots offset 256", [](auto& b) { poke<std::uint64_t>(b, offsetof(H, slots_offset), 256); },
             errc::bad_geometry);
        with("total size +64", [&](auto& b) {
                 poke<std::uint64_t>(b, offsetof(H, total_size), shm::channel_bytes(static_cast<std::uint32_t>(o.kind), 8) + 64);
             },
             errc::bad_geometry);
        with("cut in half", [](auto& b) { b.resize(b.size() / 2); }, errc::truncated);
        with("one slot short", [&](auto& b) { b.resize(b.size() - shm::slot_size_for(static_cast<std::uint32_t>(o.kind))); },
             errc::truncated);
        with("header only", [](auto& b) { b.resize(sizeof(H)); }, errc::truncated);
        with("shorter than a header", [](auto& b) { b.resize(10); }, errc::truncated);
        with("magic not yet written", [](auto& b) { poke<std::uint64_t>(b, offsetof(H, magic), 0); },
             errc::not_initialized);
        with("all zero", [](auto& b) { std::fill(b.begin(), b.end(), std::byte{0}); }, errc::not_initialized);
    }
    return v;
}

TEST(SegmentValidation, OpenRejectsEachCraftedSegmentWithItsError) {
    for (const Crafted& c : crafted_segments()) {
        SCOPED_TRACE(c.what);
        ScopedName n("crafted");
        write_segment(n.str(), c.bytes);
        EXPECT_EQ(thrown([&] { (void)Channel::open(n); }), err(c.expect));
        EXPECT_TRUE(n.exists()) << "a failed open leaves the segment alone";
    }
}

TEST(SegmentValidation, FromFdRejectsEachCraftedSegmentWithItsError) {
    for (const Crafted& c : crafted_segments()) {
        SCOPED_TRACE(c.what);
        const int fd = memfd_with(c.bytes);
        EXPECT_EQ(thrown([&] { (void)Channel::from_fd(fd); }), err(c.expect));
        ::close(fd);
    }
}

TEST(SegmentValidation, UntouchedImagesOpenFine) {
    // The control for the tests above: the unpatched bytes are a valid channel.
    for (const ChannelOptions& o : {spsc8, mpmc8}) {
        const auto img = channel_image(o);
        ScopedName n("pristine");
        write_segment(n.str(), img);
        Channel a = Channel::open(n);
        const int fd = memfd_with(img);
        Channel b = Channel::from_fd(fd);
        ::close(fd);
        EXPECT_EQ(a.kind(), o.kind);
        EXPECT_EQ(b.capacity(), o.capacity);
    }
}

TEST(SegmentValidation, ACapacityBelowTheSlotCountIsValid) {
    // Capacity 5 is stored in 8 slots: a header saying so is consistent.
    for (const ChannelOptions& o : {spsc8, mpmc8}) {
        auto img = channel_image(o);
        poke<std::uint32_t>(img, offsetof(shm::ChannelHeader, capacity), 5);
        const int fd = memfd_with(img);
        Channel ch = Channel::from_fd(fd);
        ::close(fd);
        EXPECT_EQ(ch.capacity(), 5u);
    }
}

TEST(SegmentValidation, EmptyNamedSegmentIsTruncated) {
    ScopedName n("empty");
    write_segment(n.str(), {});
    EXPECT_EQ(thrown([&] { (void)Channel::open(n); }), err(errc::truncated));
}

TEST(SegmentValidation, LargerSegmentThanNeededIsAccepted) {
    auto img = channel_image(spsc8);
    img.resize(img.size() + 4096);
    const int fd = memfd_with(img);
    Channel ch = Channel::from_fd(fd);
    ::close(fd);
    EXPECT_EQ(ch.capacity(), 8u);
}

// ---------------------------------------------------------------------------
// Handles

TEST(ChannelHandle, DefaultHandleIsEmpty) {
    Channel ch;
    EXPECT_FALSE(ch.valid());
    EXPECT_EQ(ch.fd(), -1);
    EXPECT_EQ(ch.control(), nullptr);
}

TEST(ChannelHandle, MoveTransfersTheHandle) {
    Channel a = Channel::create_anonymous(mpmc8);
    ASSERT_EQ(a.try_send(make_msg(0, 0)), Status::ok);
    Channel b(std::move(a));
    EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    ASSERT_TRUE(b.valid());
    Channel c;
    c = std::move(b);
    EXPECT_FALSE(b.valid());  // NOLINT(bugprone-use-after-move)
    ASSERT_TRUE(c.valid());
    EXPECT_EQ(c.capacity(), 8u);
    Message m;
    ASSERT_EQ(c.try_recv(m), Status::ok);
    EXPECT_TRUE(same_bytes(m, make_msg(0, 0)));
    // A handle is kept alive by its own mapping, not by the one it came from.
    Channel d = Channel::create_anonymous(spsc8);
    d = std::move(c);
    EXPECT_EQ(d.kind(), ChannelKind::mpmc);
    expect_connected(d, d, 1);
}

// ---------------------------------------------------------------------------
// Error category, Status names, the message tag

TEST(ErrorCategory, NamesItselfAndExplainsEveryCode) {
    EXPECT_STREQ(category().name(), "ipc");
    std::vector<std::string> seen;
    for (int c = static_cast<int>(errc::not_a_channel); c <= static_cast<int>(errc::membarrier_unavailable); ++c) {
        const std::string msg = category().message(c);
        EXPECT_GT(msg.size(), 20u) << c;
        EXPECT_NE(msg, "unknown ipc error") << c;
        for (const auto& s : seen) EXPECT_NE(msg, s);
        seen.push_back(msg);
    }
    EXPECT_EQ(category().message(0), "unknown ipc error");
    EXPECT_EQ(category().message(1000), "unknown ipc error");
    const std::error_code ec = errc::truncated;
    EXPECT_EQ(ec.category(), category());
    EXPECT_EQ(ec, errc::truncated);
    EXPECT_NE(ec, errc::not_a_channel);
    EXPECT_NE(ec, std::errc::no_such_file_or_directory);
}

TEST(StatusNames, EveryStatusHasAName) {
    EXPECT_STREQ(to_string(Status::ok), "ok");
    EXPECT_STREQ(to_string(Status::would_block), "would block");
    EXPECT_STREQ(to_string(Status::timed_out), "timed out");
    EXPECT_STREQ(to_string(Status::closed), "closed");
    EXPECT_STREQ(to_string(Status::corrupted), "corrupted");
    EXPECT_STREQ(to_string(static_cast<Status>(99)), "unknown");
}

TEST(MessageTag, FieldsRoundTrip) {
    const Message m = Message::make(0xDEADBEEF, {1, 2, 3}, 0xABC);
    EXPECT_EQ(m.label(), 0xDEADBEEFu);
    EXPECT_EQ(m.words(), 3u);
    EXPECT_EQ(m.flags(), 0xABCu);
    EXPECT_TRUE(m.valid());
    EXPECT_EQ(m.mr[0], 1u);
    EXPECT_EQ(m.mr[2], 3u);
    EXPECT_EQ(m.mr[3], 0u);
    EXPECT_EQ(m.tag, (std::uint64_t{0xDEADBEEF} << 32) | (0xABCu << 4) | 3u);
    const Message full = Message::make(1, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    EXPECT_EQ(full.words(), 7u) << "extra registers are dropped";
    EXPECT_EQ(full.mr[6], 7u);
    Message bad;
    bad.tag = Message::make_tag(1, 0) | (1ull << 20);
    EXPECT_FALSE(bad.valid()) << "reserved bits set";
    bad.tag = Message::make_tag(1, 9);
    EXPECT_EQ(bad.words(), 9u);
    EXPECT_FALSE(bad.valid()) << "more words than registers";
    EXPECT_EQ(Message::make_tag(5, 2, 0x1FFF), Message::make_tag(5, 2, 0xFFF)) << "flags are 12 bits";
}

}  // namespace
}  // namespace ipc::test
