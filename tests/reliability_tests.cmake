# Reliability: ipcd and the channel under kill -9 chaos (label "chaos").
# docs/reliability.md says what each test covers and how to run the long
# versions.
#
#   chaos_soak           ipcd: client processes acquiring and releasing while
#                        the driver kill -9s them in acquire, holding or in
#                        release; an independent witness in shared memory
#   channel_chaos_test   an MPMC named channel: producers and consumers
#                        killed and respawned; exactly-once bookkeeping

# The short runs are bounded in time; under the sanitizers (several times
# slower) they run for less, so the whole CTest stays within budget.
# ipcd's RSS may grow by at most 16 MB over the run (it stays within 0.5 MB
# in practice); a sanitizer's quarantine and shadow memory need more.
if(IPC_SANITIZE_ADDRESS OR IPC_SANITIZE_THREAD)
  set(IPC_CHAOS_SECONDS 12)
  set(IPC_CHAOS_RSS_KB 131072)
else()
  set(IPC_CHAOS_SECONDS 30)
  set(IPC_CHAOS_RSS_KB 16384)
endif()

add_executable(chaos_soak chaos_soak.cpp)
target_link_libraries(chaos_soak PRIVATE ipc::ipc ipc_build_flags PkgConfig::LIBURING)
target_compile_definitions(chaos_soak PRIVATE IPCD_PATH="$<TARGET_FILE:ipcd>")
add_dependencies(chaos_soak ipcd)
add_test(NAME chaos_soak_short
         COMMAND chaos_soak --ipcd $<TARGET_FILE:ipcd> --duration ${IPC_CHAOS_SECONDS} --clients 8 --semaphores 3
                 --rss-growth-kb ${IPC_CHAOS_RSS_KB})
# RUN_SERIAL: the soaks load every CPU; timing-sensitive tests elsewhere
# should not share the machine with them.
set_tests_properties(chaos_soak_short PROPERTIES LABELS chaos TIMEOUT 120 RUN_SERIAL TRUE SKIP_RETURN_CODE 77)

# A main of its own parses --duration; CTest passes the short one.
if(IPC_SANITIZE_ADDRESS OR IPC_SANITIZE_THREAD)
  set(IPC_CHANNEL_CHAOS_SECONDS 8)
else()
  set(IPC_CHANNEL_CHAOS_SECONDS 20)
endif()
add_executable(channel_chaos_test channel_chaos_test.cpp)
target_link_libraries(channel_chaos_test PRIVATE ipc::ipc GTest::gtest ipc_build_flags)
target_include_directories(channel_chaos_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/libipc)
gtest_discover_tests(channel_chaos_test EXTRA_ARGS --duration ${IPC_CHANNEL_CHAOS_SECONDS}
                     PROPERTIES LABELS chaos TIMEOUT 120 RUN_SERIAL TRUE DISCOVERY_TIMEOUT 60)
