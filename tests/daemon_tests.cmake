# ipcd: the semaphore table alone (unit), and the real daemon driven by real
# client processes (integration, stress). The daemon tests start the ipcd
# binary built here, on a socket in a temporary directory.
ipc_add_test(semaphore_table_test SOURCES semaphore_table_test.cpp LABELS unit LIBS ipcd_table TIMEOUT 30)

function(ipcd_add_test name label)
  ipc_add_test(${name} SOURCES ${name}.cpp LABELS ${label} LIBS PkgConfig::LIBURING TIMEOUT 60)
  target_compile_definitions(${name} PRIVATE IPCD_PATH="$<TARGET_FILE:ipcd>")
  add_dependencies(${name} ipcd)
endfunction()

ipcd_add_test(daemon_ops_test integration)
ipcd_add_test(daemon_session_test integration)
ipcd_add_test(daemon_hostile_test integration)
ipcd_add_test(daemon_stress_test stress)
ipcd_add_test(daemon_thread_test thread)

# systemd integration: the unit files (systemd-analyze verify), socket
# activation (systemd-socket-activate), READY/STATUS/STOPPING/WATCHDOG.
ipcd_add_test(systemd_test integration)
target_compile_definitions(systemd_test PRIVATE IPCD_UNIT_DIR="${PROJECT_SOURCE_DIR}/systemd")

# The configuration file parser alone (unit), against the shipped sample too.
ipc_add_test(config_test SOURCES config_test.cpp LABELS unit LIBS ipcd_config)
target_compile_definitions(config_test PRIVATE IPCD_SAMPLE_CONFIG="${PROJECT_SOURCE_DIR}/etc/ipcd.conf")

# ipcd with a configuration file: declared semaphores, reload (SIGHUP and
# Op::reload), limits, the create policy and the state directory.
ipcd_add_test(daemon_config_test integration)
