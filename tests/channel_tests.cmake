# Tests of the shared-memory channel (include/ipc/channel.hpp).
#
#   channel_setup_test       unit         naming, create/open/remove, memfd, segment validation
#   channel_semantics_test   unit         Go-channel semantics of both ring kinds in one thread
#   channel_corruption_test  unit         scribbled indices and turns give Status::corrupted
#   channel_thread_test      thread       several threads, both kinds (run this one under TSan)
#   channel_process_test     integration  fork / exec'd peers, SCM_RIGHTS, setuid, kill -9
#   channel_stress_test      stress       many processes blocking a lot on tiny rings
#
# channel_peer is the separately started program the multi-process tests exec.

add_executable(channel_peer channel_peer.cpp)
target_link_libraries(channel_peer PRIVATE ipc::ipc ipc_build_flags)
target_include_directories(channel_peer PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})

ipc_add_test(channel_setup_test SOURCES channel_setup_test.cpp LABELS unit TIMEOUT 30)
ipc_add_test(channel_semantics_test SOURCES channel_semantics_test.cpp LABELS unit TIMEOUT 30)
ipc_add_test(channel_corruption_test SOURCES channel_corruption_test.cpp LABELS unit TIMEOUT 30)
ipc_add_test(channel_thread_test SOURCES channel_thread_test.cpp LABELS thread TIMEOUT 60)
ipc_add_test(channel_process_test SOURCES channel_process_test.cpp LABELS integration TIMEOUT 60)
ipc_add_test(channel_stress_test SOURCES channel_stress_test.cpp LABELS stress TIMEOUT 120)

foreach(t channel_process_test channel_stress_test)
  add_dependencies(${t} channel_peer)
  target_compile_definitions(${t} PRIVATE IPC_CHANNEL_PEER="$<TARGET_FILE:channel_peer>")
endforeach()
