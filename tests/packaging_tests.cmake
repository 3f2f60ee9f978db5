# Packaging (issue 4): what `cmake --install` and `cpack -G DEB` ship, used
# the way a user would. The scripts live in tests/packaging/; each works in a
# scratch directory it removes, and skips (77) with a reason when a tool it
# needs (pkg-config, dpkg-deb) is missing.
#
# Not in sanitizer builds: their libipc is instrumented, so a consumer built
# without the sanitizer runtime cannot link it, and the .deb would ship it.
if(IPC_SANITIZE_ADDRESS OR IPC_SANITIZE_THREAD)
  message(STATUS "packaging tests not registered: sanitizer build (libipc is instrumented)")
  return()
endif()

set(_pkg_dir ${CMAKE_CURRENT_SOURCE_DIR}/packaging)

add_test(NAME packaging_install_consumer
         COMMAND ${_pkg_dir}/install_consumer.sh ${CMAKE_COMMAND} ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR}
                 ${CMAKE_INSTALL_LIBDIR} ${CMAKE_GENERATOR} ${CMAKE_CXX_COMPILER})
add_test(NAME packaging_pkgconfig_consumer
         COMMAND ${_pkg_dir}/pkgconfig_consumer.sh ${CMAKE_COMMAND} ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR}
                 ${CMAKE_INSTALL_LIBDIR} ${CMAKE_CXX_COMPILER} ${PROJECT_VERSION})
add_test(NAME packaging_deb
         COMMAND ${_pkg_dir}/deb.sh ${CMAKE_CPACK_COMMAND} ${PROJECT_BINARY_DIR} ${PROJECT_VERSION})
add_test(NAME packaging_bash_completion
         COMMAND ${_pkg_dir}/completion.sh ${PROJECT_SOURCE_DIR}/tools/ipcctl.bash-completion $<TARGET_FILE:ipcctl>)
set_tests_properties(packaging_bash_completion PROPERTIES LABELS integration TIMEOUT 60)
# One at a time: every install of this build tree rewrites its install_manifest.txt.
set_tests_properties(packaging_install_consumer packaging_pkgconfig_consumer packaging_deb PROPERTIES
                     LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 300 RESOURCE_LOCK ipc_build_tree_install)
