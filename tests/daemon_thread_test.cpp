// The client library under threads: many threads sharing one Session, the
// reply demultiplexer, the in-flight bound, and failing every waiting thread
// fast when the daemon dies.
#include <atomic>
#include <future>
#include <thread>

#include "daemon_harness.hpp"

namespace {

using namespace ipcd_test;
using ipc::Semaphore;
using ipc::Session;

TEST(IpcdThreads, ManyThreadsShareOneSession) {
    Daemon d;
    auto s = d.connect();
    constexpr int permits = 2, threads = 8, rounds = 200;
    auto sem = Semaphore::create(s, "shared", permits);
    std::atomic<int> inside{0}, violations{0}, errors{0};
    std::atomic<bool> done{false};
    std::thread watcher([&] {  // unrelated calls interleaved with the acquires
        while (!done.load())
            if (s->status().sessions != 1) errors.fetch_add(1);
    });
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&] {
            auto mine = Semaphore::open(s, "shared");  // the same handle, opened again
            for (int i = 0; i < rounds; ++i) {
                if (mine.acquire(1)) {
                    errors.fetch_add(1);
                    return;
                }
                if (inside.fetch_add(1) + 1 > permits) violations.fetch_add(1);
                inside.fetch_sub(1);
                if (mine.release(1)) errors.fetch_add(1);
            }
        });
    for (auto& t : ts) t.join();
    done.store(true);
    watcher.join();
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(violations.load(), 0);
    auto info = sem.stat();
    EXPECT_EQ(info.available, static_cast<std::uint32_t>(permits));
    EXPECT_EQ(info.last_token, static_cast<std::uint64_t>(threads) * rounds);
}

TEST(IpcdThreads, ABlockedAcquireDoesNotBlockOtherCalls) {
    Daemon d;
    auto s = d.connect(), holder = d.connect();
    auto hsem = Semaphore::create(holder, "b", 1);
    ASSERT_FALSE(hsem.acquire());
    auto sem = Semaphore::open(s, "b");
    auto blocked = std::async(std::launch::async, [&] { return sem.acquire(); });
    ASSERT_TRUE(eventually([&] { return hsem.stat(false).waiter_count == 1; }));
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 100; ++i) ASSERT_EQ(s->status().waiting, 1u);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    ASSERT_FALSE(hsem.release());
    EXPECT_FALSE(blocked.get());
}

TEST(IpcdThreads, MoreWaitingThreadsThanRingSlots) {
    Daemon d;
    auto s = d.connect(), holder = d.connect();
    auto hsem = Semaphore::create(holder, "many", 1);
    ASSERT_FALSE(hsem.acquire());
    auto sem = Semaphore::open(s, "many");
    constexpr int n = 2 * static_cast<int>(ipc::proto::ring_capacity) + 8;
    std::atomic<int> ok{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < n; ++i)
        ts.emplace_back([&] {
            if (!sem.acquire() && !sem.release()) ok.fetch_add(1);
        });
    // Only three quarters of a ring's worth of acquires wait in the daemon at
    // once (the rest of the ring stays free for releases); the others wait
    // for a slot in the client.
    ASSERT_TRUE(eventually([&] { return hsem.stat(false).waiter_count == ipc::proto::ring_capacity * 3 / 4; }));
    ASSERT_FALSE(hsem.release());  // each grant is released in turn: a cascade through all of them
    for (auto& t : ts) t.join();
    EXPECT_EQ(ok.load(), n);
    EXPECT_EQ(d.log().find("dropped"), std::string::npos) << "a well-behaved client is never dropped";
    EXPECT_EQ(hsem.stat(false).available, 1u);
}

TEST(IpcdThreads, DaemonDeathFailsEveryWaitingThreadFast) {
    Daemon d;
    auto s = d.connect(), holder = d.connect();
    auto hsem = Semaphore::create(holder, "dead", 1);
    ASSERT_FALSE(hsem.acquire());
    auto sem = Semaphore::open(s, "dead");
    std::vector<std::future<std::error_code>> waits;
    for (int i = 0; i < 10; ++i) waits.push_back(std::async(std::launch::async, [&] { return sem.acquire(); }));
    ASSERT_TRUE(eventually([&] { return hsem.stat(false).waiter_count == 10; }));
    d.kill_hard();
    const auto t0 = std::chrono::steady_clock::now();
    for (auto& w : waits) {
        ASSERT_EQ(w.wait_for(5s), std::future_status::ready);
        EXPECT_EQ(w.get(), std::errc::connection_reset);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

}  // namespace
