// ipcd under load: many client processes hammering one semaphore, checked
// by an independent witness in shared memory, and holders killed with -9
// mid-flight. At the end no permit may be missing.
#include <sys/mman.h>

#include <atomic>
#include <random>

#include "daemon_harness.hpp"

namespace {

using namespace ipcd_test;
using ipc::Semaphore;
using ipc::Session;

// Shared between the test and its children (MAP_SHARED | MAP_ANONYMOUS,
// inherited over fork): the witness that never trusts the daemon.
struct Witness {
    std::atomic<int> inside;      // permits held right now, by the holders' own account
    std::atomic<int> max_inside;
    std::atomic<int> violations;  // times `inside` exceeded the permits
    std::atomic<long> grants;
    std::atomic<int> stop;
};

Witness* make_witness() {
    void* p = ::mmap(nullptr, sizeof(Witness), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    return new (p) Witness{};
}

// One holder's turn: raise the witness, check it, lower it, release. The
// witness goes down *before* the release, so it never counts a permit the
// daemon has already handed to someone else.
bool hold(Witness& w, Semaphore& sem, std::uint32_t n, int permits) {
    const int now = w.inside.fetch_add(static_cast<int>(n)) + static_cast<int>(n);
    if (now > permits) w.violations.fetch_add(1);
    int seen = w.max_inside.load();
    while (now > seen && !w.max_inside.compare_exchange_weak(seen, now)) {
    }
    w.grants.fetch_add(1);
    for (int i = 0; i < 50; ++i) std::atomic_signal_fence(std::memory_order_seq_cst);  // a little work
    w.inside.fetch_sub(static_cast<int>(n));
    return !sem.release(n);
}

TEST(IpcdStress, SixteenProcessesNeverExceedThePermits) {
    Daemon d;
    constexpr int permits = 3, workers = 16, rounds = 500;
    auto s = d.connect();
    auto sem = Semaphore::create(s, "hammer", permits, 0600);
    Witness* w = make_witness();
    std::vector<pid_t> kids;
    for (int k = 0; k < workers; ++k) {
        kids.push_back(spawn([&, k] {
            auto cs = d.connect();
            auto csem = Semaphore::open(cs, "hammer");
            std::mt19937 rng(static_cast<unsigned>(k));
            std::uint64_t last_token = 0;
            for (int i = 0; i < rounds; ++i) {
                const std::uint32_t n = 1 + rng() % 2;
                std::error_code ec;
                switch (i % 3) {
                    case 0: ec = csem.acquire(n); break;
                    case 1: ec = csem.acquire_for(n, 10s); break;
                    default:
                        while ((ec = csem.try_acquire(n)) == code(Result::would_block)) std::this_thread::yield();
                }
                if (ec) {
                    std::fprintf(stderr, "worker %d: acquire: %s\n", k, ec.message().c_str());
                    return 1;
                }
                if (csem.fencing_token() <= last_token) return 2;  // tokens only grow
                last_token = csem.fencing_token();
                if (!hold(*w, csem, n, permits)) return 3;
            }
            return 0;
        }));
    }
    for (pid_t p : kids) EXPECT_EQ(wait_exit(p), 0);
    EXPECT_EQ(w->violations.load(), 0) << "more permits held at once than the semaphore has";
    EXPECT_LE(w->max_inside.load(), permits);
    EXPECT_EQ(w->grants.load(), long{workers} * rounds);
    auto info = sem.stat();
    EXPECT_EQ(info.available, static_cast<std::uint32_t>(permits)) << "a permit leaked";
    EXPECT_TRUE(info.holders.empty());
    EXPECT_TRUE(info.waiters.empty());
    EXPECT_EQ(info.last_token, static_cast<std::uint64_t>(workers) * rounds);
    EXPECT_TRUE(eventually([&] { return s->status().sessions == 1; }));
    ::munmap(w, sizeof(Witness));
}

TEST(IpcdStress, HoldersKilledMidFlightNeverLeakPermits) {
    Daemon d;
    constexpr int permits = 4, workers = 8;
    auto s = d.connect();
    auto sem = Semaphore::create(s, "massacre", permits, 0600);
    Witness* w = make_witness();
    std::vector<pid_t> kids;
    for (int k = 0; k < workers; ++k) {
        kids.push_back(spawn([&, k] {
            auto cs = d.connect();
            auto csem = Semaphore::open(cs, "massacre");
            std::mt19937 rng(static_cast<unsigned>(k) + 100);
            while (w->stop.load() == 0) {
                const std::uint32_t n = 1 + rng() % 3;
                const std::error_code ec =
                    (rng() % 2) ? csem.acquire(n) : csem.acquire_for(n, std::chrono::microseconds(rng() % 2000));
                if (ec == code(Result::timed_out)) continue;
                if (ec) return 1;
                w->grants.fetch_add(1);
                if (csem.release(n)) return 2;
            }
            return 0;
        }));
    }
    // Kill half of them with -9 at different moments: each after more progress.
    for (int k = 0; k < workers / 2; ++k) {
        const long target = w->grants.load() + 300;
        ASSERT_TRUE(eventually([&] { return w->grants.load() >= target; }, 30s));
        kill9(kids[static_cast<std::size_t>(k)]);
    }
    w->stop.store(1);
    for (std::size_t k = workers / 2; k < kids.size(); ++k) EXPECT_EQ(wait_exit(kids[k]), 0);
    EXPECT_TRUE(eventually([&] { return s->status().sessions == 1; }));
    auto info = sem.stat();
    EXPECT_EQ(info.available, static_cast<std::uint32_t>(permits)) << "a killed holder's permits leaked";
    EXPECT_TRUE(info.holders.empty());
    EXPECT_TRUE(info.waiters.empty());
    EXPECT_EQ(s->status().waiting, 0u);
    ::munmap(w, sizeof(Witness));
}

}  // namespace
