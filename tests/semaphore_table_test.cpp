// Unit tests of ipcd's semaphore state machine (daemon/semaphore_table.hpp):
// no daemon, no sockets; time is driven by hand.
#include "semaphore_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

namespace {

using ipc::Message;
using ipc::proto::Op;
using ipc::proto::Result;
using ipcd::Now;
using ipcd::Declared;
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

// The reservation on disk must stay ahead of every token sent: the next
// block is reserved once half of the current one is used, not when it runs
// out (the daemon saves after the pass that sent the replies).
TEST_F(SemaphoreTableTest, TokenReservationIsRenewedAtHalfTheBlock) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    Message c = call(1, named(Op::create, "keep", proto::pack(1, 0600), proto::create_persist));
    ASSERT_EQ(result(c), Result::ok);
    (void)t.take_persistent_dirty();
    std::uint64_t saved_mark = 0, renewals = 0;
    for (int i = 0; i < 70'000; ++i) {
        const Message g = call(1, req(Op::acquire, c.mr[2], 1, 0));
        ASSERT_EQ(result(g), Result::ok);
        ASSERT_LT(g.mr[2], saved_mark == 0 ? UINT64_MAX : saved_mark) << "a token beyond the saved reservation";
        if (t.take_persistent_dirty()) {
            saved_mark = t.persistent().at(0).last_token;  // what the daemon would save now
            ++renewals;
            ASSERT_GE(saved_mark, g.mr[2] + (1u << 15)) << "renewed with half a block or more to spare";
        }
        ASSERT_EQ(result(release(1, c.mr[2], 1)), Result::ok);
    }
    EXPECT_GE(renewals, 2u);
}

// After the saved state was lost, new semaphores' tokens start above the
// floor the daemon sets, so no token granted before the loss comes again.
TEST_F(SemaphoreTableTest, TokenFloorAppliesToSemaphoresCreatedAfterIt) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    t.set_token_floor(1'000'000'000);
    const auto h = create(1, "after", 1);
    const Message g = call(1, req(Op::acquire, h, 1, 0));
    ASSERT_EQ(result(g), Result::ok);
    EXPECT_EQ(g.mr[2], 1'000'000'001u);
    t.declare({Declared{"decl", 1, 0, 0, 0666}}, now, out);
    const Message g2 = call(1, req(Op::acquire, open(1, "decl"), 1, 0));
    ASSERT_EQ(result(g2), Result::ok);
    EXPECT_EQ(g2.mr[2], 1'000'000'001u);
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

// ---------------------------------------------------------------------------
// Per-user limits

TEST_F(SemaphoreTableTest, PerUserOverrideRaisesAndLowersEachLimit) {
    // Defaults: 3 sessions, 3 semaphores, 2 waits. Alice gets more, bob less.
    std::map<uid_t, ipcd::UserLimits> per_user;
    per_user[alice.uid] = ipcd::UserLimits{5, 4, 3};
    per_user[bob.uid] = ipcd::UserLimits{1, 1, 1};
    per_user[carol.uid] = ipcd::UserLimits{std::nullopt, 1, std::nullopt};  // unset fields: defaults
    t.set_limits(limits(), per_user);
    EXPECT_EQ(t.limits_for(alice.uid).sessions_per_user, 5u);
    EXPECT_EQ(t.limits_for(alice.uid).handles_per_session, 8u) << "no per-user form: the default";
    EXPECT_EQ(t.limits_for(carol.uid).sessions_per_user, 3u);
    EXPECT_EQ(t.limits_for(carol.uid).semaphores_per_user, 1u);
    EXPECT_EQ(t.limits_for(carol.uid).waits_per_user, 2u);
    EXPECT_EQ(t.limits_for(4242).semaphores_per_user, 3u);
    EXPECT_EQ(t.limits().sessions_per_user, 3u);

    // Sessions: alice 5, bob 1.
    for (SessionId s = 1; s <= 5; ++s) ASSERT_EQ(t.add_session(s, alice), Result::ok) << s;
    EXPECT_EQ(t.add_session(6, alice), Result::limit);
    ASSERT_EQ(t.add_session(11, bob), Result::ok);
    EXPECT_EQ(t.add_session(12, bob), Result::limit);
    ASSERT_EQ(t.add_session(20, root), Result::ok);

    // Semaphores: alice 4, bob 1.
    for (int i = 0; i < 4; ++i) create(1, "a" + std::to_string(i), 1, 0666);
    EXPECT_EQ(result(call(1, named(Op::create, "a4", proto::pack(1, 0600)))), Result::limit);
    create(11, "b0", 1, 0666);
    EXPECT_EQ(result(call(11, named(Op::create, "b1", proto::pack(1, 0600)))), Result::limit);

    // Waits: alice 3, bob 1.
    const auto hr = open(20, "a0");
    ASSERT_EQ(result(call(20, req(Op::acquire, hr, 1, 0))), Result::ok);
    for (SessionId s = 1; s <= 3; ++s) acquire_waits(s, open(s, "a0"), 1);
    EXPECT_EQ(result(call(4, req(Op::acquire, open(4, "a0"), 1, proto::wait_forever))), Result::limit);
    acquire_waits(11, open(11, "a0"), 1);
    const auto hb = open(11, "a1");
    ASSERT_EQ(result(call(20, req(Op::acquire, open(20, "a1"), 1, 0))), Result::ok);
    EXPECT_EQ(result(call(11, req(Op::acquire, hb, 1, proto::wait_forever))), Result::limit);
}

TEST_F(SemaphoreTableTest, LimitLoweredBelowUsageRevokesNothingAndRefusesUntilBelow) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    ASSERT_EQ(t.add_session(2, alice), Result::ok);
    ASSERT_EQ(t.add_session(3, alice), Result::ok);
    ASSERT_EQ(t.add_session(9, root), Result::ok);
    create(1, "s1", 1, 0666);
    create(1, "s2", 1, 0666);
    const auto h9 = open(9, "s1");
    ASSERT_EQ(result(call(9, req(Op::acquire, h9, 1, 0))), Result::ok);
    Message w1 = acquire_waits(1, open(1, "s1"), 1);
    Message w2 = acquire_waits(2, open(2, "s1"), 1);

    std::map<uid_t, ipcd::UserLimits> per_user;
    per_user[alice.uid] = ipcd::UserLimits{1, 1, 1};
    t.set_limits(limits(), per_user);
    // Nothing is taken away.
    EXPECT_EQ(t.sessions_of(alice.uid), 3u);
    EXPECT_EQ(t.waiting_count(), 2u);
    EXPECT_EQ(result(stat(1, open(1, "s2"))), Result::ok);
    // Everything new is refused while above or at the limit.
    EXPECT_EQ(t.add_session(4, alice), Result::limit);
    EXPECT_EQ(result(call(1, named(Op::create, "s3", proto::pack(1, 0600)))), Result::limit);
    EXPECT_EQ(result(call(3, req(Op::acquire, open(3, "s1"), 1, proto::wait_forever))), Result::limit);

    // Sessions: 3 -> 2 still at/above 1; down to 0 frees a slot.
    t.remove_session(3, now, out);
    EXPECT_EQ(t.add_session(4, alice), Result::limit);
    // Semaphores: 2 owned, limit 1: removing one leaves 1 (== limit), removing both frees one.
    ASSERT_EQ(result(call(1, named(Op::remove, "s2"))), Result::ok);
    EXPECT_EQ(result(call(1, named(Op::create, "s3", proto::pack(1, 0600)))), Result::limit);
    // Waits: 2 pending, limit 1. Granting both takes alice below it.
    ASSERT_EQ(result(release(9, h9, 1)), Result::ok);
    ASSERT_TRUE(answer_for(1, w1));
    ASSERT_EQ(result(release(1, open(1, "s1"), 1)), Result::ok);
    ASSERT_TRUE(answer_for(2, w2));
    EXPECT_EQ(t.waiting_count(), 0u);
    ASSERT_EQ(result(call(9, req(Op::acquire, h9, 1, 0))), Result::would_block) << "session 2 holds it";
    Message w = acquire_waits(1, open(1, "s1"), 1);
    EXPECT_EQ(t.waiting_count(), 1u) << "0 waits < limit 1: allowed again";
    (void)w;
    ASSERT_EQ(result(call(1, named(Op::remove, "s1"))), Result::ok);
    create(1, "s3", 1);
    t.remove_session(2, now, out);
    t.remove_session(1, now, out);
    EXPECT_EQ(t.add_session(4, alice), Result::ok);
}

TEST_F(SemaphoreTableTest, RootIgnoresItsPerUserLimits) {
    std::map<uid_t, ipcd::UserLimits> per_user;
    per_user[0] = ipcd::UserLimits{1, 1, 1};
    t.set_limits(limits(), per_user);
    EXPECT_EQ(t.limits_for(0).sessions_per_user, 1u) << "reported as configured";
    ASSERT_EQ(t.add_session(1, root), Result::ok);
    ASSERT_EQ(t.add_session(2, root), Result::ok);
    create(1, "r1", 1);
    create(1, "r2", 1);
}

// ---------------------------------------------------------------------------
// Create policy

TEST_F(SemaphoreTableTest, CreatePolicyByUidPrimaryGidSupplementaryGidAndRoot) {
    Peer dave{50, 1003, 2000, {}, ""};          // primary group 2000
    Peer erin{60, 1004, 1004, {3000, 2000}, ""};  // supplementary group 2000
    Peer frank{70, 1005, 1005, {3000}, ""};
    ipcd::CreatePolicy policy;
    policy.anyone = false;
    policy.users = {bob.uid};
    policy.groups = {2000};
    t.set_create_policy(policy);
    EXPECT_TRUE(t.may_create(root));
    EXPECT_TRUE(t.may_create(bob));
    EXPECT_TRUE(t.may_create(dave));
    EXPECT_TRUE(t.may_create(erin));
    EXPECT_FALSE(t.may_create(alice));
    EXPECT_FALSE(t.may_create(frank));

    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    ASSERT_EQ(t.add_session(2, bob), Result::ok);
    ASSERT_EQ(t.add_session(3, dave), Result::ok);
    ASSERT_EQ(t.add_session(4, erin), Result::ok);
    ASSERT_EQ(t.add_session(5, frank), Result::ok);
    ASSERT_EQ(t.add_session(6, root), Result::ok);
    EXPECT_EQ(result(call(1, named(Op::create, "p1", proto::pack(1, 0666)))), Result::permission_denied);
    EXPECT_EQ(result(call(5, named(Op::create, "p1", proto::pack(1, 0666)))), Result::permission_denied);
    create(2, "by-uid", 1, 0666);
    create(3, "by-primary-gid", 1, 0666);
    create(4, "by-supplementary-gid", 1, 0666);
    create(6, "by-root", 1, 0666);
    // The refused may still use what others created.
    EXPECT_EQ(result(call(1, named(Op::open, "by-uid"))), Result::ok);
    // Bad arguments are still invalid_argument, whoever asks.
    EXPECT_EQ(result(call(1, named(Op::create, "p1", proto::pack(0, 0666)))), Result::invalid_argument);

    t.set_create_policy(ipcd::CreatePolicy{});
    EXPECT_TRUE(t.may_create(alice)) << "the default lets anyone create";
    create(1, "p1", 1);
}

// ---------------------------------------------------------------------------
// Declared semaphores

TEST_F(SemaphoreTableTest, DeclareCreatesUncountedPersistentUnremovable) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    ASSERT_EQ(t.add_session(2, root), Result::ok);
    (void)t.take_persistent_dirty();
    auto rep = t.declare({Declared{"cfg", 2, alice.uid, 500, 0640}}, now, out);
    EXPECT_EQ(rep.created, std::vector<std::string>{"cfg"});
    EXPECT_TRUE(rep.changed.empty() && rep.adopted.empty() && rep.undeclared.empty() && rep.refused.empty());
    EXPECT_TRUE(t.take_persistent_dirty());
    const auto h = open(1, "cfg");
    Message st = stat(1, h);
    EXPECT_EQ(proto::low(st.mr[2]), 2u);
    EXPECT_EQ(available(st), 2u);
    EXPECT_EQ(proto::low(st.mr[4]), alice.uid);
    EXPECT_EQ(proto::high(st.mr[4]), 500u);
    EXPECT_EQ(proto::low(st.mr[5]), 0640u);
    EXPECT_EQ(proto::high(st.mr[5]), proto::sem_persistent | proto::sem_declared);
    // Not counted against alice: she still has her 3.
    for (int i = 0; i < 3; ++i) create(1, "own" + std::to_string(i), 1);
    // Nobody removes it, not the owner, not root.
    EXPECT_EQ(result(call(1, named(Op::remove, "cfg"))), Result::declared);
    EXPECT_EQ(result(call(2, named(Op::remove, "cfg"))), Result::declared);
    // Persistent: its definition (and token reservation) is saved.
    auto defs = t.persistent();
    ASSERT_EQ(defs.size(), 1u);
    EXPECT_EQ(defs[0].name, "cfg");
    // Declaring the same set again changes nothing.
    rep = t.declare({Declared{"cfg", 2, alice.uid, 500, 0640}}, now, out);
    EXPECT_TRUE(rep.created.empty() && rep.changed.empty() && rep.adopted.empty());
    EXPECT_FALSE(t.take_persistent_dirty());
}

TEST_F(SemaphoreTableTest, DeclareUpdatesAttributesKeepingHolders) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    ASSERT_EQ(t.add_session(2, bob), Result::ok);
    t.declare({Declared{"cfg", 2, alice.uid, alice.gid, 0600}}, now, out);
    const auto h = open(1, "cfg");
    ASSERT_EQ(result(call(1, req(Op::acquire, h, 1, 0))), Result::ok);
    EXPECT_EQ(result(call(2, named(Op::open, "cfg"))), Result::permission_denied);
    (void)t.take_persistent_dirty();
    auto rep = t.declare({Declared{"cfg", 5, bob.uid, bob.gid, 0660}}, now, out);
    EXPECT_EQ(rep.changed, std::vector<std::string>{"cfg"});
    EXPECT_TRUE(t.take_persistent_dirty());
    Message st = stat(2, open(2, "cfg"));
    EXPECT_EQ(proto::low(st.mr[2]), 5u);
    EXPECT_EQ(available(st), 4u) << "alice still holds her permit";
    EXPECT_EQ(proto::low(st.mr[4]), bob.uid);
    EXPECT_EQ(proto::low(st.mr[5]), 0660u);
    EXPECT_EQ(result(call(1, req(Op::acquire, h, 1, 0))), Result::permission_denied)
        << "alice lost write access with the new mode";
    EXPECT_EQ(release(1, h, 1).mr[1], static_cast<std::uint64_t>(Result::ok))
        << "but not the right to give back the permit she holds";
    EXPECT_EQ(available(stat(2, open(2, "cfg"))), 5u);
}

TEST_F(SemaphoreTableTest, DeclareAdoptsAClientsSemaphoreAndUncountsIt) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    ASSERT_EQ(t.add_session(2, root), Result::ok);
    const auto h = create(1, "mine", 2, 0666);
    create(1, "m2", 1);
    create(1, "m3", 1);
    EXPECT_EQ(result(call(1, named(Op::create, "m4", proto::pack(1, 0600)))), Result::limit);
    ASSERT_EQ(result(call(1, req(Op::acquire, h, 1, 0))), Result::ok);
    Message w = acquire_waits(2, open(2, "mine"), 2);
    (void)t.take_persistent_dirty();
    auto rep = t.declare({Declared{"mine", 3, 0, 0, 0666}}, now, out);
    EXPECT_EQ(rep.adopted, std::vector<std::string>{"mine"});
    EXPECT_TRUE(rep.changed.empty()) << "adopted is reported once";
    EXPECT_TRUE(t.take_persistent_dirty());
    auto g = answer_for(2, w);
    ASSERT_TRUE(g) << "raised to 3 with 1 held: the waiter for 2 fits";
    EXPECT_EQ(result(*g), Result::ok);
    Message st = stat(1, h);
    EXPECT_EQ(proto::high(st.mr[5]), proto::sem_persistent | proto::sem_declared);
    EXPECT_EQ(proto::low(st.mr[4]), 0u) << "the configuration's owner";
    EXPECT_EQ(result(call(1, named(Op::remove, "mine"))), Result::declared);
    create(1, "m4", 1);  // the adopted one no longer counts against alice
    ASSERT_EQ(t.persistent().size(), 1u);
}

TEST_F(SemaphoreTableTest, UndeclaredSemaphoresStayPersistentAndCountAgainstNobody) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    t.declare({Declared{"keep", 1, alice.uid, alice.gid, 0600}, Declared{"gone", 1, alice.uid, alice.gid, 0600}},
              now, out);
    const auto hg = open(1, "gone");
    ASSERT_EQ(result(call(1, req(Op::acquire, hg, 1, 0))), Result::ok);
    auto rep = t.declare({Declared{"keep", 1, alice.uid, alice.gid, 0600}}, now, out);
    EXPECT_EQ(rep.undeclared, std::vector<std::string>{"gone"});
    Message st = stat(1, hg);
    EXPECT_EQ(proto::high(st.mr[5]), proto::sem_persistent) << "persistent, no longer declared";
    EXPECT_EQ(proto::high(st.mr[3]) + proto::low(st.mr[3]), 1u) << "its holder stays";
    EXPECT_EQ(t.persistent().size(), 2u);
    // Counted against nobody: alice still has 3 to create.
    for (int i = 0; i < 3; ++i) create(1, "own" + std::to_string(i), 1);
    // Now an ordinary semaphore: its owner may remove it.
    ASSERT_EQ(result(release(1, hg, 1)), Result::ok);
    EXPECT_EQ(result(call(1, named(Op::remove, "gone"))), Result::ok);
    EXPECT_EQ(result(call(1, named(Op::create, "own3", proto::pack(1, 0600)))), Result::limit)
        << "removing it gave alice nothing back";
}

TEST_F(SemaphoreTableTest, DeclareRefusesBadAndRepeatedEntriesAndKeepsTheirSemaphores) {
    ASSERT_EQ(t.add_session(1, root), Result::ok);
    t.declare({Declared{"d", 2, 0, 0, 0600}}, now, out);
    auto rep = t.declare({Declared{"bad name", 1, 0, 0, 0600}, Declared{"zero", 0, 0, 0, 0600},
                          Declared{"mode", 1, 0, 0, 01000}, Declared{"d", 0, 0, 0, 0600}, Declared{"x", 1, 0, 0, 0600},
                          Declared{"x", 7, 0, 0, 0600}, Declared{"", 1, 0, 0, 0}},
                         now, out);
    EXPECT_EQ(rep.refused, (std::vector<std::string>{"bad name", "zero", "mode", "d", "x", ""}));
    EXPECT_EQ(rep.created, std::vector<std::string>{"x"});
    EXPECT_TRUE(rep.undeclared.empty()) << "a refused entry does not undeclare its semaphore";
    EXPECT_EQ(proto::low(stat(1, open(1, "d")).mr[2]), 2u);
    EXPECT_EQ(proto::low(stat(1, open(1, "x")).mr[2]), 1u) << "the first of two entries wins";
    EXPECT_EQ(t.semaphore_count(), 2u);
}

TEST_F(SemaphoreTableTest, DeclareAfterRestoreAdoptsTheSavedSemaphore) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    t.declare({Declared{"cfg", 1, alice.uid, alice.gid, 0600}}, now, out);
    const auto h = open(1, "cfg");
    ASSERT_EQ(result(call(1, req(Op::acquire, h, 1, 0))), Result::ok);
    auto defs = t.persistent();
    ASSERT_EQ(defs.size(), 1u);

    SemaphoreTable fresh{limits()};
    ASSERT_EQ(fresh.restore(defs[0]), Result::ok);
    Outbox o;
    auto rep = fresh.declare({Declared{"cfg", 1, alice.uid, alice.gid, 0600}}, now, o);
    EXPECT_EQ(rep.adopted, std::vector<std::string>{"cfg"});
    ASSERT_EQ(fresh.add_session(1, alice), Result::ok);
    Message u = proto::request(Op::usage, 1);
    u.mr[2] = proto::wait_forever;
    fresh.handle(1, u, now, o);
    ASSERT_EQ(o.size(), 1u);
    EXPECT_EQ(proto::low(o[0].reply.mr[3]), 0u) << "uncounted again after adoption";
    o.clear();
    Message a = proto::request(Op::open, 2);
    proto::pack_name(a, 2, "cfg");
    fresh.handle(1, a, now, o);
    Message acq = req(Op::acquire, o[0].reply.mr[2], 1, 0);
    o.clear();
    fresh.handle(1, acq, now, o);
    ASSERT_EQ(o.size(), 1u);
    EXPECT_GT(o[0].reply.mr[2], defs[0].last_token - 1) << "tokens continue across the restart";
    EXPECT_GE(o[0].reply.mr[2], 2u);
}

// ---------------------------------------------------------------------------
// Changing permits while held

TEST_F(SemaphoreTableTest, LoweringPermitsBelowHeldGrantsOnlyOnceHeldFits) {
    for (SessionId s = 1; s <= 5; ++s) ASSERT_EQ(t.add_session(s, root), Result::ok);
    t.declare({Declared{"low", 3, 0, 0, 0600}}, now, out);
    std::uint64_t h[6];
    for (SessionId s = 1; s <= 5; ++s) h[s] = open(s, "low");
    for (SessionId s = 1; s <= 3; ++s) ASSERT_EQ(result(call(s, req(Op::acquire, h[s], 1, 0))), Result::ok);
    Message w4 = acquire_waits(4, h[4], 1);
    Message w5 = acquire_waits(5, h[5], 1);
    out.clear();
    t.declare({Declared{"low", 1, 0, 0, 0600}}, now, out);
    EXPECT_TRUE(out.empty()) << "nothing revoked, nothing granted, nobody refused (1 <= 1)";
    Message st = stat(1, h[1]);
    EXPECT_EQ(proto::low(st.mr[2]), 1u);
    EXPECT_EQ(available(st), 0u) << "max(0, 1 - 3)";
    EXPECT_EQ(proto::low(st.mr[3]), 3u) << "all three still hold";
    // Two releases: held 3 -> 1, still not below the new count.
    ASSERT_EQ(result(release(1, h[1], 1)), Result::ok);
    EXPECT_TRUE(out.empty());
    ASSERT_EQ(result(release(2, h[2], 1)), Result::ok);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(available(stat(1, h[1])), 0u);
    EXPECT_EQ(result(call(1, req(Op::acquire, h[1], 1, 0))), Result::would_block);
    // From here one at a time.
    ASSERT_EQ(result(release(3, h[3], 1)), Result::ok);
    ASSERT_TRUE(answer_for(4, w4));
    EXPECT_FALSE(answer_for(5, w5));
    ASSERT_EQ(result(release(4, h[4], 1)), Result::ok);
    ASSERT_TRUE(answer_for(5, w5));
    EXPECT_EQ(proto::low(stat(1, h[1]).mr[3]), 1u) << "one holder at a time";
}

TEST_F(SemaphoreTableTest, RaisingPermitsGrantsWaitersInFifoOrder) {
    for (SessionId s = 1; s <= 4; ++s) ASSERT_EQ(t.add_session(s, root), Result::ok);
    t.declare({Declared{"up", 1, 0, 0, 0600}}, now, out);
    ASSERT_EQ(result(call(1, req(Op::acquire, open(1, "up"), 1, 0))), Result::ok);
    Message w2 = acquire_waits(2, open(2, "up"), 1);
    Message w3 = acquire_waits(3, open(3, "up"), 1);
    Message w4 = acquire_waits(4, open(4, "up"), 1);
    out.clear();
    (void)t.take_persistent_dirty();
    t.declare({Declared{"up", 3, 0, 0, 0600}}, now, out);
    EXPECT_TRUE(t.take_persistent_dirty());
    ASSERT_EQ(out.size(), 2u) << "1 held + 2 granted = 3";
    EXPECT_EQ(out[0].session, 2u);
    EXPECT_EQ(out[1].session, 3u);
    EXPECT_LT(out[0].reply.mr[2], out[1].reply.mr[2]);
    EXPECT_TRUE(answer_for(2, w2) && answer_for(3, w3));
    EXPECT_FALSE(answer_for(4, w4));
    EXPECT_EQ(t.waiting_count(), 1u);
}

TEST_F(SemaphoreTableTest, WaiterWantingMoreThanLoweredPermitsGetsTooMany) {
    for (SessionId s = 1; s <= 3; ++s) ASSERT_EQ(t.add_session(s, root), Result::ok);
    t.declare({Declared{"big", 4, 0, 0, 0600}}, now, out);
    ASSERT_EQ(result(call(1, req(Op::acquire, open(1, "big"), 2, 0))), Result::ok);
    Message w2 = acquire_waits(2, open(2, "big"), 3, 100 * ms);
    Message w3 = acquire_waits(3, open(3, "big"), 1);
    out.clear();
    t.declare({Declared{"big", 2, 0, 0, 0600}}, now, out);
    auto r2 = answer_for(2, w2);
    ASSERT_TRUE(r2);
    EXPECT_EQ(result(*r2), Result::too_many);
    EXPECT_EQ(r2->label(), static_cast<std::uint32_t>(Op::acquire));
    EXPECT_FALSE(answer_for(3, w3)) << "2 held of 2: the waiter for 1 keeps waiting";
    EXPECT_FALSE(t.next_deadline()) << "the refused wait's deadline is gone";
    EXPECT_EQ(t.waiting_count(), 1u);
    EXPECT_EQ(result(call(2, req(Op::acquire, open(2, "big"), 3, 0))), Result::too_many);
}

// ---------------------------------------------------------------------------
// Op::sessions, Op::release_session, Op::usage, Op::reload

TEST_F(SemaphoreTableTest, SessionsListsInIdOrderWithTruncatedCommand) {
    Peer p7{77, 1000, 1000, {}, "a-very-long-command-name"};
    Peer p3{33, 1001, 1001, {}, "sh"};
    ASSERT_EQ(t.add_session(7, p7), Result::ok);
    ASSERT_EQ(t.add_session(3, p3), Result::ok);
    create(7, "s", 3, 0666);
    ASSERT_EQ(result(call(7, req(Op::acquire, open(7, "s"), 2, 0))), Result::ok);
    const auto h3 = open(3, "s");
    acquire_waits(3, h3, 2);

    Message e0 = call(7, req(Op::sessions, 0, 0));
    ASSERT_EQ(result(e0), Result::ok);
    EXPECT_EQ(proto::low(e0.mr[2]), 3u);
    EXPECT_EQ(proto::high(e0.mr[2]), 33u);
    EXPECT_EQ(proto::low(e0.mr[3]), 1001u);
    EXPECT_EQ(proto::high(e0.mr[3]), 1001u);
    EXPECT_EQ(proto::low(e0.mr[4]), 0u);
    EXPECT_EQ(proto::high(e0.mr[4]), 1u) << "one pending acquire";
    char c[16];
    std::memcpy(c, &e0.mr[5], 16);
    EXPECT_EQ(std::string(c, 16), std::string("sh") + std::string(14, '\0'));

    Message e1 = call(3, req(Op::sessions, 0, 3));  // after session 3
    ASSERT_EQ(result(e1), Result::ok);
    EXPECT_EQ(proto::low(e1.mr[2]), 7u);
    EXPECT_EQ(proto::high(e1.mr[2]), 77u);
    EXPECT_EQ(proto::low(e1.mr[4]), 2u) << "permits held";
    EXPECT_EQ(proto::high(e1.mr[4]), 0u);
    std::memcpy(c, &e1.mr[5], 16);
    EXPECT_EQ(std::string(c, 16), "a-very-long-comm") << "16 bytes, no terminator";

    EXPECT_EQ(proto::low(call(3, req(Op::sessions, 0, 1)).mr[2]), 3u) << "a cursor between ids";
    EXPECT_EQ(proto::low(call(3, req(Op::sessions, 0, 5)).mr[2]), 7u);
    EXPECT_EQ(result(call(3, req(Op::sessions, 0, 7))), Result::end);
    EXPECT_EQ(result(call(3, req(Op::sessions, 0, ~0ull))), Result::end);
    // A session leaving mid-listing does not make the next one skipped.
    Outbox gone;
    t.remove_session(3, now, gone);
    EXPECT_EQ(proto::low(call(7, req(Op::sessions, 0, 3)).mr[2]), 7u);
}

TEST_F(SemaphoreTableTest, ReleaseSessionRefusals) {
    ASSERT_EQ(t.add_session(1, root), Result::ok);
    ASSERT_EQ(t.add_session(2, alice), Result::ok);
    EXPECT_EQ(result(call(2, req(Op::release_session, 0, 1))), Result::permission_denied);
    EXPECT_EQ(result(call(2, req(Op::release_session, 0, 2))), Result::permission_denied) << "not even itself";
    EXPECT_EQ(result(call(1, req(Op::release_session, 0, 1))), Result::invalid_argument);
    EXPECT_EQ(result(call(1, req(Op::release_session, 0, 99))), Result::not_found);
    EXPECT_EQ(result(call(1, req(Op::release_session, 0, (1ull << 32) | 2))), Result::not_found);
    EXPECT_EQ(t.session_count(), 2u);
    EXPECT_TRUE(t.take_kicked().empty());
}

TEST_F(SemaphoreTableTest, ReleaseSessionEndsItAndUnblocksWaiters) {
    ASSERT_EQ(t.add_session(1, root), Result::ok);
    ASSERT_EQ(t.add_session(2, alice), Result::ok);
    ASSERT_EQ(t.add_session(3, bob), Result::ok);
    const auto ha = create(2, "x", 3, 0666);
    create(2, "y", 1, 0666);
    ASSERT_EQ(result(call(2, req(Op::acquire, ha, 3, 0))), Result::ok);
    ASSERT_EQ(result(call(3, req(Op::acquire, open(3, "y"), 1, 0))), Result::ok);
    acquire_waits(2, open(2, "y"), 1, 10 * ms);  // alice also waits on y
    Message wb = acquire_waits(3, open(3, "x"), 2);
    ASSERT_EQ(t.waiting_count(), 2u);

    Message r = call(1, req(Op::release_session, 0, 2));
    ASSERT_EQ(result(r), Result::ok);
    EXPECT_EQ(r.mr[2], 3u) << "permits given back";
    EXPECT_EQ(r.mr[3], 1u) << "waits cancelled";
    auto g = answer_for(3, wb);
    ASSERT_TRUE(g) << "bob's wait for x is granted";
    EXPECT_EQ(result(*g), Result::ok);
    EXPECT_TRUE(out.empty()) << "no reply to the cancelled wait";
    EXPECT_FALSE(t.has_session(2));
    EXPECT_FALSE(t.next_deadline());
    EXPECT_EQ(t.sessions_of(alice.uid), 0u);
    EXPECT_EQ(t.take_kicked(), std::vector<SessionId>{2});
    EXPECT_TRUE(t.take_kicked().empty());
    // The daemon's own removal afterwards is a no-op.
    EXPECT_EQ(t.remove_session(2, now, out).handles, 0u);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(result(call(1, req(Op::release_session, 0, 2))), Result::not_found);
}

TEST_F(SemaphoreTableTest, UsageReportsCountsLimitsAndCreatePolicy) {
    std::map<uid_t, ipcd::UserLimits> per_user;
    per_user[alice.uid] = ipcd::UserLimits{std::nullopt, 5, std::nullopt};
    t.set_limits(limits(), per_user);
    ipcd::CreatePolicy policy;
    policy.anyone = false;
    policy.groups = {1000};  // alice's primary gid; carol's supplementary
    t.set_create_policy(policy);
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    ASSERT_EQ(t.add_session(2, alice), Result::ok);
    ASSERT_EQ(t.add_session(3, carol), Result::ok);
    ASSERT_EQ(t.add_session(4, root), Result::ok);
    create(1, "u1", 1, 0666);
    create(1, "u2", 1, 0666);
    ASSERT_EQ(result(call(4, req(Op::acquire, open(4, "u1"), 1, 0))), Result::ok);
    acquire_waits(2, open(2, "u1"), 1);

    Message u = call(1, req(Op::usage, 0, proto::wait_forever));
    ASSERT_EQ(result(u), Result::ok);
    EXPECT_EQ(u.mr[2], proto::pack(2, 3));
    EXPECT_EQ(u.mr[3], proto::pack(2, 5));
    EXPECT_EQ(u.mr[4], proto::pack(1, 2));
    EXPECT_EQ(u.mr[5], proto::pack(alice.uid, 1));
    EXPECT_EQ(u.mr[6], 8u);
    // Anyone may ask about anyone.
    Message ua = call(3, req(Op::usage, 0, alice.uid));
    EXPECT_EQ(ua.mr[2], u.mr[2]);
    EXPECT_EQ(ua.mr[5], proto::pack(alice.uid, 1)) << "from her session's primary gid";
    // Carol about herself: her supplementary group counts.
    EXPECT_EQ(call(3, req(Op::usage, 0, proto::wait_forever)).mr[5], proto::pack(carol.uid, 1));
    // About carol from elsewhere: only her primary gid is known.
    EXPECT_EQ(call(1, req(Op::usage, 0, carol.uid)).mr[5], proto::pack(carol.uid, 0));
    // A uid with nothing: zero usage, the default limits, no session to learn a gid from.
    Message un = call(1, req(Op::usage, 0, 4242));
    EXPECT_EQ(un.mr[2], proto::pack(0, 3));
    EXPECT_EQ(un.mr[5], proto::pack(4242, 0));
    // Root: limits reported as 0 (none), except the per-session handle limit.
    Message ur = call(1, req(Op::usage, 0, 0));
    EXPECT_EQ(ur.mr[2], proto::pack(1, 0));
    EXPECT_EQ(ur.mr[3], proto::pack(0, 0));
    EXPECT_EQ(ur.mr[4], proto::pack(0, 0));
    EXPECT_EQ(ur.mr[5], proto::pack(0, 1));
    EXPECT_EQ(ur.mr[6], 8u);
    // Not a uid.
    EXPECT_EQ(result(call(1, req(Op::usage, 0, 1ull << 32))), Result::invalid_argument);
}

TEST_F(SemaphoreTableTest, ReloadIsTheDaemonsToAnswer) {
    ASSERT_EQ(t.add_session(1, alice), Result::ok);
    ASSERT_EQ(t.add_session(2, root), Result::ok);
    EXPECT_EQ(result(call(1, req(Op::reload))), Result::permission_denied);
    EXPECT_EQ(result(call(2, req(Op::reload))), Result::unknown_op);
}

// Random registers on every op, from several sessions, with declare() and
// release_session mixed in: the table answers each request, never crashes,
// and its counts stay consistent.
TEST_F(SemaphoreTableTest, RandomRequestsKeepInvariants) {
    std::mt19937_64 rng(12345);
    const Peer peers[] = {root, alice, bob, carol};
    for (SessionId s = 1; s <= 4; ++s) ASSERT_EQ(t.add_session(s, peers[s - 1]), Result::ok);
    const char* names[] = {"a", "b", "c"};
    auto pick = [&](std::uint64_t n) { return rng() % n; };
    for (int i = 0; i < 20000; ++i) {
        const SessionId s = static_cast<SessionId>(1 + pick(4));
        if (!t.has_session(s)) {
            (void)t.add_session(s, peers[s - 1]);
            continue;
        }
        const auto op = static_cast<Op>(pick(17));
        Message m = proto::request(op, next_id++);
        switch (pick(4)) {
            case 0:
                for (auto& r : m.mr) r = rng();
                m.mr[0] = next_id++;
                break;
            default:
                m.mr[1] = pick(2) ? pick(5) : proto::pack(static_cast<std::uint32_t>(1 + pick(4)), 0666);
                m.mr[2] = pick(6);
                m.mr[3] = pick(3) == 0 ? 0 : pick(2) ? proto::wait_forever : pick(100) * ms;
                if (pick(2)) proto::pack_name(m, 2, names[pick(3)]);
        }
        out.clear();
        t.handle(s, m, now, out);
        if (pick(50) == 0) {
            std::vector<Declared> d;
            for (const char* n : names)
                if (pick(2)) d.push_back(Declared{n, static_cast<std::uint32_t>(pick(4)), 1000, 1000, 0666});
            t.declare(d, now, out);
        }
        if (pick(100) == 0) t.remove_session(static_cast<SessionId>(1 + pick(4)), now, out);
        if (pick(20) == 0) {
            now.mono_ns += static_cast<std::int64_t>(pick(50)) * ms;
            t.expire(now, out);
        }
        for (SessionId k : t.take_kicked()) EXPECT_FALSE(t.has_session(k));
        // Every semaphore's available <= permits; status agrees with the counters.
        for (std::uint64_t idx = 0;; ++idx) {
            Message l = proto::request(Op::list, next_id++);
            l.mr[2] = idx;
            Outbox o;
            t.handle(1, l, now, o);
            if (!t.has_session(1)) break;
            ASSERT_EQ(o.size(), 1u);
            if (static_cast<Result>(o[0].reply.mr[1]) == Result::end) break;
            ASSERT_LE(proto::high(o[0].reply.mr[6]), proto::low(o[0].reply.mr[6]));
        }
    }
}

}  // namespace
