// Unit tests of ipcd's semaphore state machine (daemon/semaphore_table.hpp):
// no daemon, no sockets; time is driven by hand.
#include "semaphore_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace {

using ipc::Message;
using ipc::proto::Op;
using ipc::proto::Result;
using ipcd::Now;
using ipcd::Outbox;
using ipcd::Peer;
using ipcd::SemaphoreTable;
using ipcd::SessionId;
namespace proto = ipc::proto;

constexpr std::int64_t ms = 1'000'000;

class SemaphoreTableTest : public ::testing::Test {
protected:
    ipcd::Limits limits() {
        ipcd::Limits l;
        l.sessions_per_user = 3;
        l.semaphores_per_user = 3;
        l.waits_per_user = 2;
        l.handles_per_session = 8;
        return l;
    }

    SemaphoreTable t{limits()};
    Now now{10'000 * ms, 1'700'000'000'000'000'000};
    Outbox out;
    std::uint64_t next_id = 1;

    Peer root{10, 0, 0, {}, ""};
    Peer alice{20, 1000, 1000, {}, ""};
    Peer bob{30, 1001, 1001, {}, ""};
    Peer carol{40, 1002, 1002, {1000}, ""};  // in alice's group as a supplementary group

    Message req(Op op, std::uint64_t handle = 0, std::uint64_t r2 = 0, std::uint64_t r3 = 0) {
        Message m = proto::request(op, next_id++);
        m.mr[1] = handle;
        m.mr[2] = r2;
        m.mr[3] = r3;
        return m;
    }
    Message named(Op op, std::string_view name, std::uint64_t r1 = 0, unsigned flags = 0) {
        Message m = proto::request(op, next_id++, flags);
        m.mr[1] = r1;
        proto::pack_name(m, 2, name);
        return m;
    }

    // Sends `m` and returns the reply to it; other replies stay in `out`.
    Message call(SessionId s, const Message& m) {
        out.clear();
        t.handle(s, m, now, out);
        auto it = std::find_if(out.begin(), out.end(),
                               [&](const ipcd::Answer& a) { return a.session == s && a.reply.mr[0] == m.mr[0]; });
        if (it == out.end()) {
            ADD_FAILURE() << "no immediate reply to op " << m.label();
            return Message{};
        }
        Message r = it->reply;
        out.erase(it);
        return r;
    }
    static Result result(const Message& m) { return static_cast<Result>(m.mr[1]); }

    std::uint64_t create(SessionId s, std::string_view name, std::uint32_t permits, std::uint32_t mode = 0600) {
        Message r = call(s, named(Op::create, name, proto::pack(permits, mode)));
        EXPECT_EQ(result(r), Result::ok) << name;
        EXPECT_TRUE(r.flags() & proto::reply_flag);
        EXPECT_EQ(r.label(), static_cast<std::uint32_t>(Op::create));
        return r.mr[2];
    }
    std::uint64_t open(SessionId s, std::string_view name) {
        Message r = call(s, named(Op::open, name));
        EXPECT_EQ(result(r), Result::ok) << name;
        return r.mr[2];
    }
    // Returns the acquire request (to match later answers) after checking it waits.
    Message acquire_waits(SessionId s, std::uint64_t h, std::uint32_t n, std::uint64_t timeout = proto::wait_forever) {
        Message m = req(Op::acquire, h, n, timeout);
        out.clear();
        t.handle(s, m, now, out);
        EXPECT_TRUE(out.empty()) << "acquire should wait";
        return m;
    }
    Message release(SessionId s, std::uint64_t h, std::uint32_t n) { return call(s, req(Op::release, h, n)); }
    Message stat(SessionId s, std::uint64_t h) { return call(s, req(Op::stat, h)); }
    static std::uint32_t available(const Message& st) { return proto::high(st.mr[2]); }

    // The deferred answer in `out` for request `m`, removed from `out`.
    std::optional<Message> answer_for(SessionId s, const Message& m) {
        auto it = std::find_if(out.begin(), out.end(),
                               [&](const ipcd::Answer& a) { return a.session == s && a.reply.mr[0] == m.mr[0]; });
        if (it == out.end()) return std::nullopt;
        Message r = it->reply;
        out.erase(it);
        return r;
    }
};

TEST_F(SemaphoreTableTest, CreateOpenAcquireReleaseRoundTrip) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    const auto h = create(1, "db", 3, 0640);
    EXPECT_NE(h, 0u);
    Message a = call(1, req(Op::acquire, h, 2, 0));
    EXPECT_EQ(result(a), Result::ok);
    EXPECT_EQ(a.mr[2], 1u);  // first fencing token
    EXPECT_EQ(a.mr[3], 2u);  // held by this session
    Message s = stat(1, h);
    EXPECT_EQ(result(s), Result::ok);
    EXPECT_EQ(proto::low(s.mr[2]), 3u);
    EXPECT_EQ(available(s), 1u);
    EXPECT_EQ(proto::low(s.mr[3]), 1u);   // holders
    EXPECT_EQ(proto::high(s.mr[3]), 0u);  // waiters
    EXPECT_EQ(proto::low(s.mr[4]), 1000u);
    EXPECT_EQ(proto::high(s.mr[4]), 1000u);
    EXPECT_EQ(proto::low(s.mr[5]), 0640u);
    EXPECT_EQ(s.mr[6], 1u);
    Message r = release(1, h, 1);
    EXPECT_EQ(result(r), Result::ok);
    EXPECT_EQ(r.mr[3], 1u);
    EXPECT_EQ(available(stat(1, h)), 2u);
}

TEST_F(SemaphoreTableTest, TokensGrowWithEveryGrant) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    const auto h = create(1, "t", 2);
    std::uint64_t last = 0;
    for (int i = 0; i < 5; ++i) {
        Message a = call(1, req(Op::acquire, h, 1, 0));
        ASSERT_EQ(result(a), Result::ok);
        EXPECT_GT(a.mr[2], last);
        last = a.mr[2];
        ASSERT_EQ(result(release(1, h, 1)), Result::ok);
    }
    EXPECT_EQ(stat(1, h).mr[6], last);
}

TEST_F(SemaphoreTableTest, CreateRejectsBadArguments) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    EXPECT_EQ(result(call(1, named(Op::create, "a", proto::pack(0, 0600)))), Result::invalid_argument);
    EXPECT_EQ(result(call(1, named(Op::create, "a", proto::pack(1, 01000)))), Result::invalid_argument);
    EXPECT_EQ(result(call(1, named(Op::create, ".hidden", proto::pack(1, 0600)))), Result::invalid_argument);
    EXPECT_EQ(result(call(1, named(Op::create, "a b", proto::pack(1, 0600)))), Result::invalid_argument);
    EXPECT_EQ(result(call(1, named(Op::create, "a", proto::pack(1, 0600), 0x10))), Result::invalid_argument)
        << "unknown flag";
    Message junk = named(Op::create, "abc", proto::pack(1, 0600));
    junk.mr[5] = 0x4100000000000000ull;  // a byte after the NUL terminator
    EXPECT_EQ(result(call(1, junk)), Result::invalid_argument);
    create(1, "a", 1);
    EXPECT_EQ(result(call(1, named(Op::create, "a", proto::pack(1, 0600)))), Result::exists);
}

TEST_F(SemaphoreTableTest, OpenSameNameTwiceSharesOneHandle) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    const auto h = create(1, "s", 2);
    EXPECT_EQ(open(1, "s"), h);
    EXPECT_EQ(result(call(1, named(Op::open, "nope"))), Result::not_found);
    // Two opens (create + open): the first close only lowers the count.
    ASSERT_EQ(result(call(1, req(Op::acquire, h, 1, 0))), Result::ok);
    EXPECT_EQ(result(call(1, req(Op::close, h))), Result::ok);
    EXPECT_EQ(result(call(1, req(Op::close, h))), Result::busy) << "last close with a permit held";
    ASSERT_EQ(result(release(1, h, 1)), Result::ok);
    EXPECT_EQ(result(call(1, req(Op::close, h))), Result::ok);
    EXPECT_EQ(result(call(1, req(Op::close, h))), Result::bad_handle);
    EXPECT_EQ(result(stat(1, h)), Result::bad_handle);
}

TEST_F(SemaphoreTableTest, AcquireArgumentChecks) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    const auto h = create(1, "s", 2);
    EXPECT_EQ(result(call(1, req(Op::acquire, h, 0, 0))), Result::invalid_argument);
    EXPECT_EQ(result(call(1, req(Op::acquire, h, 3, 0))), Result::too_many);
    EXPECT_EQ(result(call(1, req(Op::acquire, h, 1ull << 40, 0))), Result::too_many);
    EXPECT_EQ(result(call(1, req(Op::acquire, h + 100, 1, 0))), Result::bad_handle);
    EXPECT_EQ(result(call(1, req(Op::acquire, 0, 1, 0))), Result::bad_handle);
    ASSERT_EQ(result(call(1, req(Op::acquire, h, 2, 0))), Result::ok);
    EXPECT_EQ(result(call(1, req(Op::acquire, h, 1, 0))), Result::would_block);
}

TEST_F(SemaphoreTableTest, ReleaseMoreThanHeldChangesNothing) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    ASSERT_EQ(t.add_session(2, alice), Result::ok);
    const auto h1 = create(1, "s", 3);
    const auto h2 = open(2, "s");
    ASSERT_EQ(result(call(1, req(Op::acquire, h1, 1, 0))), Result::ok);
    ASSERT_EQ(result(call(2, req(Op::acquire, h2, 1, 0))), Result::ok);
    EXPECT_EQ(result(release(1, h1, 2)), Result::over_release);
    EXPECT_EQ(result(release(1, h1, 0)), Result::invalid_argument);
    EXPECT_EQ(available(stat(1, h1)), 1u);
    // Session 2's permit is not session 1's to give back.
    ASSERT_EQ(result(release(1, h1, 1)), Result::ok);
    EXPECT_EQ(result(release(1, h1, 1)), Result::over_release);
    EXPECT_EQ(available(stat(1, h1)), 2u);
}

TEST_F(SemaphoreTableTest, GrantsAreStrictlyFifo) {
    for (SessionId s = 1; s <= 4; ++s) ASSERT_EQ(t.add_session(s, root), Result::ok);
    const auto h = create(1, "f", 3);
    std::uint64_t hs[5] = {0, h, open(2, "f"), open(3, "f"), open(4, "f")};
    ASSERT_EQ(result(call(1, req(Op::acquire, h, 2, 0))), Result::ok);  // 1 left
    Message a = acquire_waits(2, hs[2], 2);                            // head: wants 2
    Message b = acquire_waits(3, hs[3], 1);                            // fits, but queued behind a
    EXPECT_EQ(result(call(4, req(Op::acquire, hs[4], 1, 0))), Result::would_block) << "a try must not jump the queue";
    Message st = stat(1, h);
    EXPECT_EQ(available(st), 1u);
    EXPECT_EQ(proto::high(st.mr[3]), 2u);
    // Release 1: now 2 available: the head (2) is granted, b still waits.
    Message r = release(1, h, 1);
    EXPECT_EQ(result(r), Result::ok);
    auto ga = answer_for(2, a);
    ASSERT_TRUE(ga);
    EXPECT_EQ(result(*ga), Result::ok);
    EXPECT_EQ(ga->label(), static_cast<std::uint32_t>(Op::acquire));
    EXPECT_FALSE(answer_for(3, b));
    ASSERT_EQ(result(release(1, h, 1)), Result::ok);
    auto gb = answer_for(3, b);
    ASSERT_TRUE(gb);
    EXPECT_EQ(result(*gb), Result::ok);
    EXPECT_GT(gb->mr[2], ga->mr[2]) << "tokens follow grant order";
}

TEST_F(SemaphoreTableTest, ReleaseGrantsSeveralWaitersInOrder) {
    for (SessionId s = 1; s <= 4; ++s) ASSERT_EQ(t.add_session(s, root), Result::ok);
    const auto h = create(1, "m", 3);
    ASSERT_EQ(result(call(1, req(Op::acquire, h, 3, 0))), Result::ok);
    Message w2 = acquire_waits(2, open(2, "m"), 1);
    Message w3 = acquire_waits(3, open(3, "m"), 1);
    Message w4 = acquire_waits(4, open(4, "m"), 2);
    ASSERT_EQ(result(release(1, h, 3)), Result::ok);
    auto g2 = answer_for(2, w2), g3 = answer_for(3, w3);
    ASSERT_TRUE(g2 && g3);
    EXPECT_LT(g2->mr[2], g3->mr[2]);
    EXPECT_FALSE(answer_for(4, w4)) << "1 left, the head wants 2";
}

TEST_F(SemaphoreTableTest, TimedWaitExpiresAndUnblocksThoseBehind) {
    for (SessionId s = 1; s <= 3; ++s) ASSERT_EQ(t.add_session(s, root), Result::ok);
    const auto h = create(1, "t", 2);
    ASSERT_EQ(result(call(1, req(Op::acquire, h, 1, 0))), Result::ok);  // 1 left
    Message big = acquire_waits(2, open(2, "t"), 2, 50 * ms);
    Message small = acquire_waits(3, open(3, "t"), 1);
    ASSERT_TRUE(t.next_deadline());
    EXPECT_EQ(*t.next_deadline(), now.mono_ns + 50 * ms);
    out.clear();
    now.mono_ns += 49 * ms;
    t.expire(now, out);
    EXPECT_TRUE(out.empty());
    now.mono_ns += 1 * ms;
    t.expire(now, out);
    auto tb = answer_for(2, big);
    ASSERT_TRUE(tb);
    EXPECT_EQ(result(*tb), Result::timed_out);
    auto gs = answer_for(3, small);
    ASSERT_TRUE(gs) << "the timed-out head no longer blocks the queue";
    EXPECT_EQ(result(*gs), Result::ok);
    EXPECT_FALSE(t.next_deadline());
    EXPECT_EQ(t.waiting_count(), 0u);
}

TEST_F(SemaphoreTableTest, HugeTimeoutSaturatesInsteadOfOverflowing) {
    ASSERT_EQ(t.add_session(1, root), Result::ok);
    ASSERT_EQ(t.add_session(2, root), Result::ok);
    const auto h = create(1, "h", 1);
    ASSERT_EQ(result(call(1, req(Op::acquire, h, 1, 0))), Result::ok);
    acquire_waits(2, open(2, "h"), 1, proto::wait_forever - 1);
    // Centuries away: treated as forever, and certainly not as the past.
    if (auto d = t.next_deadline()) {
        EXPECT_GT(*d, now.mono_ns);
    }
    out.clear();
    now.mono_ns += 1'000'000 * ms;
    t.expire(now, out);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(t.waiting_count(), 1u);
}

TEST_F(SemaphoreTableTest, RemoveAnswersWaitersAndDropsHolders) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    ASSERT_EQ(t.add_session(2, alice), Result::ok);
    ASSERT_EQ(t.add_session(3, bob), Result::ok);
    const auto h = create(1, "r", 1, 0666);
    ASSERT_EQ(result(call(1, req(Op::acquire, h, 1, 0))), Result::ok);
    const auto h2 = open(2, "r");
    Message w = acquire_waits(2, h2, 1);
    EXPECT_EQ(result(call(3, named(Op::remove, "r"))), Result::permission_denied) << "bob is not the owner";
    Message rm = call(1, named(Op::remove, "r"));
    EXPECT_EQ(result(rm), Result::ok);
    auto d = answer_for(2, w);
    ASSERT_TRUE(d);
    EXPECT_EQ(result(*d), Result::deleted);
    EXPECT_EQ(result(stat(1, h)), Result::not_found);
    EXPECT_EQ(result(release(1, h, 1)), Result::not_found);
    EXPECT_EQ(result(call(1, req(Op::close, h))), Result::ok) << "a dangling handle still closes";
    EXPECT_EQ(result(call(1, named(Op::remove, "r"))), Result::not_found);
    // The name is free again, and the new semaphore is a different one.
    const auto h3 = create(1, "r", 2);
    EXPECT_EQ(result(stat(2, h2)), Result::not_found);
    EXPECT_EQ(available(stat(1, h3)), 2u);
    EXPECT_EQ(t.waiting_count(), 0u);
}

TEST_F(SemaphoreTableTest, RootRemovesAnything) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    ASSERT_EQ(t.add_session(2, root), Result::ok);
    create(1, "x", 1);
    EXPECT_EQ(result(call(2, named(Op::remove, "x"))), Result::ok);
}

TEST_F(SemaphoreTableTest, PermissionClassesLikeFiles) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    ASSERT_EQ(t.add_session(2, bob), Result::ok);
    ASSERT_EQ(t.add_session(3, carol), Result::ok);
    ASSERT_EQ(t.add_session(4, root), Result::ok);
    create(1, "private", 1, 0600);
    create(1, "grp", 1, 0640);
    create(1, "others", 1, 0604);
    EXPECT_EQ(result(call(2, named(Op::open, "private"))), Result::permission_denied);
    EXPECT_EQ(result(call(3, named(Op::open, "private"))), Result::permission_denied);
    EXPECT_EQ(result(call(4, named(Op::open, "private"))), Result::ok) << "root bypasses";
    EXPECT_EQ(result(call(2, named(Op::open, "grp"))), Result::permission_denied);
    const auto hc = call(3, named(Op::open, "grp")).mr[2];  // carol: supplementary group 1000
    EXPECT_EQ(result(stat(3, hc)), Result::ok);
    EXPECT_EQ(result(call(3, req(Op::acquire, hc, 1, 0))), Result::permission_denied) << "group: read only";
    EXPECT_EQ(result(call(3, req(Op::holder, hc, 0))), Result::end);
    // The class is chosen first, then its bits apply: carol is in the group,
    // whose bits are empty, so the "other" read bit does not help her.
    EXPECT_EQ(result(call(2, named(Op::open, "others"))), Result::ok);
    EXPECT_EQ(result(call(3, named(Op::open, "others"))), Result::permission_denied);
}

TEST_F(SemaphoreTableTest, WriteOnlyMayAcquireButNotStat) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    ASSERT_EQ(t.add_session(2, bob), Result::ok);
    create(1, "w", 1, 0602);
    const auto h = call(2, named(Op::open, "w")).mr[2];
    EXPECT_EQ(result(call(2, req(Op::acquire, h, 1, 0))), Result::ok);
    EXPECT_EQ(result(stat(2, h)), Result::permission_denied);
    EXPECT_EQ(result(call(2, req(Op::waiter, h, 0))), Result::permission_denied);
    EXPECT_EQ(result(release(2, h, 1)), Result::ok);
}

TEST_F(SemaphoreTableTest, PerUserLimits) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    ASSERT_EQ(t.add_session(2, alice), Result::ok);
    ASSERT_EQ(t.add_session(3, alice), Result::ok);
    EXPECT_EQ(t.add_session(4, alice), Result::limit);
    EXPECT_EQ(t.sessions_of(alice.uid), 3u);
    ASSERT_EQ(t.add_session(5, root), Result::ok);
    create(1, "a1", 1, 0666);
    create(2, "a2", 1, 0666);
    create(2, "a0", 1, 0666);
    EXPECT_EQ(result(call(3, named(Op::create, "a3", proto::pack(1, 0600)))), Result::limit);
    // Waits: alice may have two pending.
    const auto hr = call(5, named(Op::open, "a1")).mr[2];
    ASSERT_EQ(result(call(5, req(Op::acquire, hr, 1, 0))), Result::ok);
    acquire_waits(1, open(1, "a1"), 1);
    acquire_waits(2, open(2, "a1"), 1);
    EXPECT_EQ(result(call(3, req(Op::acquire, open(3, "a1"), 1, proto::wait_forever))), Result::limit);
    // Removing a semaphore frees its owner's quota; a session's end frees its slot.
    ASSERT_EQ(result(call(1, named(Op::remove, "a2"))), Result::ok);
    create(3, "a3", 1);
    t.remove_session(3, now, out);
    EXPECT_EQ(t.add_session(4, alice), Result::ok);
    // Root is exempt.
    for (int i = 0; i < 5; ++i) create(5, "root" + std::to_string(i), 1);
}

TEST_F(SemaphoreTableTest, HandleLimitPerSession) {
    ASSERT_EQ(t.add_session(1, root), Result::ok);
    for (int i = 0; i < 8; ++i) create(1, "h" + std::to_string(i), 1);
    EXPECT_EQ(result(call(1, named(Op::create, "h8", proto::pack(1, 0600)))), Result::limit);
    ASSERT_EQ(t.add_session(2, root), Result::ok);
    create(2, "h8", 1);
    EXPECT_EQ(result(call(1, named(Op::open, "h8"))), Result::limit);
    EXPECT_EQ(open(1, "h0"), 1u) << "reopening an open name needs no new handle";
}

TEST_F(SemaphoreTableTest, DepartureGivesPermitsBackAndCancelsWaits) {
    for (SessionId s = 1; s <= 3; ++s) ASSERT_EQ(t.add_session(s, root), Result::ok);
    const auto h = create(1, "d", 2);
    ASSERT_EQ(result(call(1, req(Op::acquire, h, 2, 0))), Result::ok);
    const auto h2 = open(2, "d");
    Message w2 = acquire_waits(2, h2, 2, 100 * ms);
    Message w3 = acquire_waits(3, open(3, "d"), 1);
    // Session 2 (the head) leaves: its wait goes, silently.
    out.clear();
    auto d2 = t.remove_session(2, now, out);
    EXPECT_EQ(d2.waits_cancelled, 1u);
    EXPECT_EQ(d2.permits_released, 0u);
    EXPECT_TRUE(out.empty());
    EXPECT_FALSE(t.next_deadline());
    // Session 1 (the holder) leaves: its permits go to session 3.
    auto d1 = t.remove_session(1, now, out);
    EXPECT_EQ(d1.permits_released, 2u);
    EXPECT_EQ(d1.semaphores_held, 1u);
    auto g3 = answer_for(3, w3);
    ASSERT_TRUE(g3);
    EXPECT_EQ(result(*g3), Result::ok);
    EXPECT_FALSE(answer_for(2, w2));
    EXPECT_EQ(t.session_count(), 1u);
    EXPECT_EQ(t.waiting_count(), 0u);
    // Unknown sessions are ignored.
    EXPECT_EQ(t.remove_session(99, now, out).handles, 0u);
}

TEST_F(SemaphoreTableTest, DepartureDoesNotGrantToItself) {
    ASSERT_EQ(t.add_session(1, root), Result::ok);
    ASSERT_EQ(t.add_session(2, root), Result::ok);
    const auto h = create(1, "self", 1);
    ASSERT_EQ(result(call(1, req(Op::acquire, h, 1, 0))), Result::ok);
    acquire_waits(1, h, 1);  // waits behind its own permit (another thread of it)
    Message w2 = acquire_waits(2, open(2, "self"), 1);
    out.clear();
    t.remove_session(1, now, out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].session, 2u);
    EXPECT_EQ(out[0].reply.mr[0], w2.mr[0]);
}

TEST_F(SemaphoreTableTest, StopAnswersEveryWaiterAndRefusesNewWaits) {
    for (SessionId s = 1; s <= 3; ++s) ASSERT_EQ(t.add_session(s, root), Result::ok);
    const auto h = create(1, "st", 1);
    ASSERT_EQ(result(call(1, req(Op::acquire, h, 1, 0))), Result::ok);
    Message w2 = acquire_waits(2, open(2, "st"), 1, 10 * ms);
    Message w3 = acquire_waits(3, open(3, "st"), 1);
    out.clear();
    t.stop(out);
    EXPECT_EQ(result(*answer_for(2, w2)), Result::stopping);
    EXPECT_EQ(result(*answer_for(3, w3)), Result::stopping);
    EXPECT_EQ(t.waiting_count(), 0u);
    EXPECT_FALSE(t.next_deadline());
    EXPECT_EQ(result(call(2, req(Op::acquire, open(2, "st"), 1, proto::wait_forever))), Result::stopping);
    EXPECT_EQ(result(call(2, req(Op::acquire, open(2, "st"), 1, 0))), Result::would_block);
}

TEST_F(SemaphoreTableTest, HolderAndWaiterIteration) {
    Peer p1{111, 0, 0, {}, ""}, p2{222, 0, 0, {}, ""};
    ASSERT_EQ(t.add_session(1, p1), Result::ok);
    ASSERT_EQ(t.add_session(2, p2), Result::ok);
    const auto h = create(1, "it", 3);
    ASSERT_EQ(result(call(1, req(Op::acquire, h, 2, 0))), Result::ok);
    now.real_ns += 5;
    acquire_waits(2, open(2, "it"), 3);
    Message h0 = call(1, req(Op::holder, h, 0));
    ASSERT_EQ(result(h0), Result::ok);
    EXPECT_EQ(proto::low(h0.mr[2]), 111u);
    EXPECT_EQ(h0.mr[3], 2u);
    EXPECT_EQ(h0.mr[4], static_cast<std::uint64_t>(now.real_ns - 5));
    EXPECT_EQ(h0.mr[5], 1u);
    EXPECT_EQ(result(call(1, req(Op::holder, h, 1))), Result::end);
    Message w0 = call(1, req(Op::waiter, h, 0));
    ASSERT_EQ(result(w0), Result::ok);
    EXPECT_EQ(proto::low(w0.mr[2]), 222u);
    EXPECT_EQ(w0.mr[3], 3u);
    EXPECT_EQ(w0.mr[5], 2u);
    EXPECT_EQ(result(call(1, req(Op::waiter, h, 1))), Result::end);
    EXPECT_EQ(result(call(1, req(Op::waiter, h, ~0ull))), Result::end);
}

TEST_F(SemaphoreTableTest, ListAndStatus) {
    ASSERT_EQ(t.add_session(1, root), Result::ok);
    t.set_daemon_info(4242, 1234);
    create(1, "b", 2);
    create(1, "a", 1);
    Message l0 = call(1, req(Op::list, 0, 0));
    ASSERT_EQ(result(l0), Result::ok);
    EXPECT_EQ(proto::unpack_name(l0, 2), "a");
    Message l1 = call(1, req(Op::list, 0, 1));
    EXPECT_EQ(proto::unpack_name(l1, 2), "b");
    EXPECT_EQ(proto::low(l1.mr[6]), 2u);
    EXPECT_EQ(proto::high(l1.mr[6]), 2u);
    EXPECT_EQ(result(call(1, req(Op::list, 0, 2))), Result::end);
    Message st = call(1, req(Op::status));
    EXPECT_EQ(st.mr[2], 1u);
    EXPECT_EQ(st.mr[3], 2u);
    EXPECT_EQ(st.mr[4], 0u);
    EXPECT_EQ(st.mr[5], 4242u);
    EXPECT_EQ(st.mr[6], 1234u);
}

TEST_F(SemaphoreTableTest, HostileMessagesGetErrorsNotCrashes) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    Message m = req(Op::status);
    m.tag |= 1ull << 20;  // reserved tag bits
    EXPECT_EQ(result(call(1, m)), Result::invalid_argument);
    m = req(Op::status);
    m.tag = (m.tag & ~0xFull) | 0xF;  // 15 words
    EXPECT_EQ(result(call(1, m)), Result::invalid_argument);
    m = req(Op::status);
    m.tag |= std::uint64_t{proto::reply_flag} << ipc::Message::flags_shift;
    EXPECT_EQ(result(call(1, m)), Result::invalid_argument);
    m = proto::request(static_cast<Op>(999), next_id++);
    EXPECT_EQ(result(call(1, m)), Result::unknown_op);
    m = proto::request(static_cast<Op>(0), next_id++);
    EXPECT_EQ(result(call(1, m)), Result::unknown_op);
    // Requests from an unknown session are ignored.
    out.clear();
    t.handle(77, req(Op::status), now, out);
    EXPECT_TRUE(out.empty());
}

TEST_F(SemaphoreTableTest, PersistentDefinitionsRoundTripWithTokenReservation) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    Message c = call(1, named(Op::create, "keep", proto::pack(2, 0640), proto::create_persist));
    ASSERT_EQ(result(c), Result::ok);
    create(1, "temp", 1);
    EXPECT_TRUE(t.take_persistent_dirty());
    EXPECT_FALSE(t.take_persistent_dirty());
    EXPECT_EQ(proto::high(stat(1, c.mr[2]).mr[5]), proto::sem_persistent);
    ASSERT_EQ(result(call(1, req(Op::acquire, c.mr[2], 1, 0))), Result::ok);
    EXPECT_TRUE(t.take_persistent_dirty()) << "the first grant reserves a block of tokens";
    ASSERT_EQ(result(release(1, c.mr[2], 1)), Result::ok);
    ASSERT_EQ(result(call(1, req(Op::acquire, c.mr[2], 1, 0))), Result::ok);
    EXPECT_FALSE(t.take_persistent_dirty()) << "within the reserved block";
    auto defs = t.persistent();
    ASSERT_EQ(defs.size(), 1u);
    EXPECT_EQ(defs[0].name, "keep");
    EXPECT_EQ(defs[0].permits, 2u);
    EXPECT_EQ(defs[0].owner, 1000u);
    EXPECT_EQ(defs[0].mode, 0640u);
    EXPECT_GE(defs[0].last_token, 2u);

    SemaphoreTable fresh;
    ASSERT_EQ(fresh.restore(defs[0]), Result::ok);
    EXPECT_EQ(fresh.restore(defs[0]), Result::exists);
    ASSERT_EQ(fresh.add_session(1, alice), Result::ok);
    Outbox o;
    Message open_req = named(Op::open, "keep");
    fresh.handle(1, open_req, now, o);
    ASSERT_EQ(o.size(), 1u);
    Message acq = req(Op::acquire, o[0].reply.mr[2], 1, 0);
    o.clear();
    fresh.handle(1, acq, now, o);
    ASSERT_EQ(o.size(), 1u);
    EXPECT_GT(o[0].reply.mr[2], defs[0].last_token) << "tokens never repeat across a restart";

    ipcd::Definition bad = defs[0];
    bad.name = "bad name";
    EXPECT_EQ(fresh.restore(bad), Result::invalid_argument);
    ASSERT_EQ(result(call(1, named(Op::remove, "keep"))), Result::ok);
    EXPECT_TRUE(t.take_persistent_dirty());
    EXPECT_TRUE(t.persistent().empty());
}

}  // namespace
