// examples/channel_semaphore.cpp - a buffered channel used as a semaphore,
// across processes.
//
// Go's classic:
//
//     var sem = make(chan int, MaxOutstanding)
//     func handle(r *Request) { sem <- 1; process(r); <-sem }
//
// Here the server process hands requests to worker processes over one
// channel, and a second channel of capacity 3 is the semaphore: a worker
// sends into it before it works (blocking while 3 are in flight) and
// receives from it when done. Nothing else coordinates them.
//
//     channel_semaphore [--requests N] [--workers W] [--slots S]
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ipc/channel.hpp"

namespace {

constexpr std::uint32_t label_request = 1;

double now_s(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int worker(int id, ipc::Channel& queue, ipc::Channel& sem, std::atomic<int>& running, std::atomic<int>& peak,
           std::chrono::steady_clock::time_point t0) {
    std::mt19937 rng(static_cast<unsigned>(::getpid()));
    ipc::Message req;
    for (;;) {
        ipc::Status s = queue.recv(req);
        if (s == ipc::Status::closed) return 0;
        if (s != ipc::Status::ok) {
            std::fprintf(stderr, "worker %d: receive failed: %s\n", id, ipc::to_string(s));
            return 1;
        }
        const auto n = req.mr[0];
        // sem <- 1: blocks while the semaphore channel is full.
        const auto token = ipc::Message::make(0, {n});
        if (sem.try_send(token) == ipc::Status::would_block) {
            std::printf("%6.3fs  worker %d (pid %d): request %2llu waits for a slot\n", now_s(t0), id, ::getpid(),
                        static_cast<unsigned long long>(n));
            std::fflush(stdout);
            if (sem.send(token) != ipc::Status::ok) return 1;
        }
        const int now = running.fetch_add(1) + 1;
        int p = peak.load();
        while (now > p && !peak.compare_exchange_weak(p, now)) {
        }
        std::printf("%6.3fs  worker %d (pid %d): request %2llu running   [%d of %u slots in use]\n", now_s(t0), id,
                    ::getpid(), static_cast<unsigned long long>(n), now, sem.capacity());
        std::fflush(stdout);
        std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 200));  // process(r)
        running.fetch_sub(1);
        std::printf("%6.3fs  worker %d (pid %d): request %2llu done\n", now_s(t0), id, ::getpid(),
                    static_cast<unsigned long long>(n));
        std::fflush(stdout);
        ipc::Message slot;
        // <-sem: frees a slot and wakes a worker blocked in send.
        if (sem.recv(slot) != ipc::Status::ok) return 1;
    }
}

unsigned arg(int argc, char** argv, const char* name, unsigned def) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) {
            char* end = nullptr;
            const unsigned long v = std::strtoul(argv[i + 1], &end, 10);
            if (*end != '\0' || v == 0 || v > 1024) {
                std::fprintf(stderr, "channel_semaphore: %s needs a number from 1 to 1024\n", name);
                std::exit(2);
            }
            return static_cast<unsigned>(v);
        }
    return def;
}

}  // namespace

int main(int argc, char** argv) {
    const unsigned requests = arg(argc, argv, "--requests", 12);
    const unsigned workers = arg(argc, argv, "--workers", 6);
    const unsigned slots = arg(argc, argv, "--slots", 3);

    // Both channels are anonymous (memfd) and inherited by fork; MPMC
    // because every worker sends and receives on both.
    auto queue = ipc::Channel::create_anonymous({.kind = ipc::ChannelKind::mpmc, .capacity = 16});
    auto sem = ipc::Channel::create_anonymous({.kind = ipc::ChannelKind::mpmc, .capacity = slots});

    // A witness outside the channels: how many workers are inside process(r).
    void* mem = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        std::perror("channel_semaphore: mmap");
        return 1;
    }
    auto* running = new (mem) std::atomic<int>(0);
    auto* peak = new (static_cast<char*>(mem) + 64) std::atomic<int>(0);

    const auto t0 = std::chrono::steady_clock::now();
    std::printf("server (pid %d): %u requests, %u worker processes, semaphore = channel of capacity %u\n",
                ::getpid(), requests, workers, slots);
    std::fflush(stdout);

    std::vector<pid_t> pids;
    for (unsigned w = 0; w < workers; ++w) {
        const pid_t pid = ::fork();
        if (pid < 0) {
            std::perror("channel_semaphore: fork");
            return 1;
        }
        if (pid == 0) ::_exit(worker(static_cast<int>(w), queue, sem, *running, *peak, t0));
        pids.push_back(pid);
    }

    // Serve: hand out the requests, then close. Workers drain what is
    // buffered and see `closed`, like ranging over a Go channel.
    for (unsigned n = 1; n <= requests; ++n)
        if (queue.send(ipc::Message::make(label_request, {n})) != ipc::Status::ok) return 1;
    queue.close();

    int failures = 0;
    for (pid_t pid : pids) {
        int st = 0;
        ::waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) ++failures;
    }
    std::printf("server: all %u requests done in %.2fs; at most %d ran at once (limit %u)\n", requests, now_s(t0),
                peak->load(), slots);
    if (failures || peak->load() > static_cast<int>(slots)) {
        std::fprintf(stderr, "channel_semaphore: %d worker(s) failed or the limit was exceeded\n", failures);
        return 1;
    }
    return 0;
}
