// examples/sem_workers.cpp - one worker sharing a named ipcd semaphore.
//
//     sem_workers ID [SEMAPHORE]          (default SEMAPHORE: demo)
//
// Start several of these, as unrelated processes, against one semaphore:
// each connects to ipcd on its own ($IPCD_SOCKET, or the default socket),
// takes one permit, works a short random time, and gives the permit back.
// However many run, at most `permits` of them work at once; if one is killed
// while it works, the daemon gives its permit back when its session socket
// closes. scripts/demo-daemon.sh runs eight of them against three permits.
//
//     ipcctl create demo --permits 3
//     for i in 1 2 3 4 5 6 7 8; do sem_workers $i & done; wait
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <system_error>
#include <thread>

#include "ipc/semaphore.hpp"

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) {
        std::fprintf(stderr, "usage: sem_workers ID [SEMAPHORE]\n");
        return 2;
    }
    const std::string id = argv[1];
    const std::string name = argc == 3 ? argv[2] : "demo";
    try {
        auto session = ipc::Session::connect();  // $IPCD_SOCKET, else the system or user socket
        auto sem = ipc::Semaphore::open(session, name);

        std::mt19937 rng(static_cast<unsigned>(::getpid()));
        const auto work = std::chrono::milliseconds(std::uniform_int_distribution<int>(100, 400)(rng));
        const auto asked = std::chrono::steady_clock::now();
        {
            ipc::SemaphoreGuard permit(sem, 1);  // blocks until granted; released at the closing brace
            const auto waited = std::chrono::steady_clock::now() - asked;
            // How many permits are taken right now, ours included (a snapshot:
            // others may come and go while we print).
            const ipc::SemaphoreInfo info = sem.stat(false);
            std::printf("worker %s: acquired (token %llu, %u of %u in use) after waiting %lld ms\n", id.c_str(),
                        static_cast<unsigned long long>(permit.token()), info.permits - info.available, info.permits,
                        static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()));
            std::fflush(stdout);
            std::this_thread::sleep_for(work);  // the work this permit protects
        }
        std::printf("worker %s: released after %lld ms of work\n", id.c_str(), static_cast<long long>(work.count()));
        std::fflush(stdout);
        return 0;
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "worker %s: %s\n", id.c_str(), e.what());
        return 1;
    }
}
