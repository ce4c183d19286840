# install.cmake: what `make install` puts where, and `make uninstall`.
#
# Included from the top-level CMakeLists.txt (anywhere after project()):
#   cmake --install BUILD [--prefix PREFIX]   (DESTDIR from the environment)
# installs
#   PREFIX/bin/kvd, kvctl, kvbench (each if its target exists)
#   PREFIX/lib/systemd/system/kvd@.service, kvd.target   (KV_SYSTEMD_UNIT_DIR)
#   PREFIX/share/man/man8/kvd.8, man1/kvctl.1
#   PREFIX/share/doc/causalkv/examples/{cluster.env,1.conf,2.conf,3.conf,README}
# The unit's ExecStart= names PREFIX/bin/kvd. It is generated when
# installing, not when configuring, so `cmake --install --prefix` (which
# only takes effect then) is honoured; DESTDIR never appears in it.
#
# Run as a script (`[DESTDIR=...] cmake -DKV_MANIFEST=FILE -P install.cmake`,
# what the `uninstall` target does) it removes every file listed in the
# manifest the last install wrote (BUILD/install_manifest.txt). The manifest
# does not record DESTDIR: give the uninstall the same DESTDIR as the install.

if(CMAKE_SCRIPT_MODE_FILE)
  if(NOT KV_MANIFEST OR NOT EXISTS "${KV_MANIFEST}")
    message(FATAL_ERROR "uninstall: no install manifest ('${KV_MANIFEST}'); run the install first")
  endif()
  file(STRINGS "${KV_MANIFEST}" kv_files)
  set(kv_dirs "")
  foreach(kv_file IN LISTS kv_files)
    set(kv_file "$ENV{DESTDIR}${kv_file}")
    if(IS_SYMLINK "${kv_file}" OR EXISTS "${kv_file}")
      message(STATUS "Removing ${kv_file}")
      file(REMOVE "${kv_file}")
      get_filename_component(kv_dir "${kv_file}" DIRECTORY)
      list(APPEND kv_dirs "${kv_dir}")
    else()
      message(STATUS "Already gone: ${kv_file}")
    endif()
  endforeach()
  # Directories of our own (share/doc/causalkv/...) go too once empty;
  # shared ones (bin, man8, lib/systemd/system) stay.
  list(REMOVE_DUPLICATES kv_dirs)
  foreach(kv_dir IN LISTS kv_dirs)
    while(kv_dir MATCHES "/causalkv(/examples)?$")
      # rmdir removes empty directories only.
      execute_process(COMMAND rmdir -- "${kv_dir}" RESULT_VARIABLE kv_rc OUTPUT_QUIET ERROR_QUIET)
      if(NOT kv_rc EQUAL 0)
        break()
      endif()
      message(STATUS "Removing directory ${kv_dir}")
      get_filename_component(kv_dir "${kv_dir}" DIRECTORY)
    endwhile()
  endforeach()
  return()
endif()

include(GNUInstallDirs)

set(KV_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Where the systemd units are installed (relative to the install prefix, or absolute)")

# The programs: deferred to the end of the top-level CMakeLists.txt, so
# targets of directories added after this file (bench/: kvbench) count too.
function(kv_install_programs)
  foreach(kv_program IN ITEMS kvd kvctl kvbench)
    if(TARGET ${kv_program})
      install(TARGETS ${kv_program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
    endif()
  endforeach()
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL kv_install_programs)

# kvd@.service: @KVD_BINDIR@ becomes the installed bin directory, computed
# from the prefix in force when installing.
set(KV_UNIT_GENERATED "${PROJECT_BINARY_DIR}/systemd/kvd@.service")
install(CODE "
  set(KV_UNIT_TEMPLATE \"${PROJECT_SOURCE_DIR}/systemd/kvd@.service.in\")
  set(KV_UNIT_GENERATED \"${KV_UNIT_GENERATED}\")
  set(KV_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
")
install(CODE [[
  if(IS_ABSOLUTE "${KV_BINDIR}")
    set(KVD_BINDIR "${KV_BINDIR}")
  else()
    set(KVD_BINDIR "${CMAKE_INSTALL_PREFIX}/${KV_BINDIR}")
  endif()
  configure_file("${KV_UNIT_TEMPLATE}" "${KV_UNIT_GENERATED}" @ONLY)
]])
install(FILES "${KV_UNIT_GENERATED}" "${PROJECT_SOURCE_DIR}/systemd/kvd.target"
        DESTINATION ${KV_SYSTEMD_UNIT_DIR})

install(FILES "${PROJECT_SOURCE_DIR}/man/kvd.8" DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES "${PROJECT_SOURCE_DIR}/man/kvctl.1" DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

install(FILES
          "${PROJECT_SOURCE_DIR}/systemd/examples/README"
          "${PROJECT_SOURCE_DIR}/systemd/examples/cluster.env"
          "${PROJECT_SOURCE_DIR}/systemd/examples/1.conf"
          "${PROJECT_SOURCE_DIR}/systemd/examples/2.conf"
          "${PROJECT_SOURCE_DIR}/systemd/examples/3.conf"
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# `make uninstall`: removes what the last install listed in its manifest.
if(NOT TARGET uninstall)
  add_custom_target(uninstall
    COMMAND ${CMAKE_COMMAND} -DKV_MANIFEST=${PROJECT_BINARY_DIR}/install_manifest.txt
            -P ${CMAKE_CURRENT_LIST_FILE}
    COMMENT "Removing the files of the last install (install_manifest.txt)"
    VERBATIM)
endif()
