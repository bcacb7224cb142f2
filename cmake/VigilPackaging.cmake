# `cmake --install` layout and the CPack .deb (scripts/package builds it).
#   bin/           every vigil binary users run
#   libexec/vigil/ helpers vigil runs itself (vigil-replica, vigil-executor)
#   lib/systemd/system/   vigil-node.service, vigil-ssr-store.service
#   <sysconfdir>/default/ their flags (/etc/default with CMAKE_INSTALL_PREFIX=/usr)
#   share/doc/vigil/      README and docs
include(GNUInstallDirs)

set(VIGIL_DOC_DIR ${CMAKE_INSTALL_FULL_DOCDIR})
set(VIGIL_DEFAULTS_DIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/default)

install(TARGETS vigil-voter vigil-node vigil-run vigilctl vigil-ssr-store vigil-server vigil-client
                vigil-bench
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS vigil-replica vigil-executor RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/vigil)
foreach(unit vigil-node vigil-ssr-store)
  configure_file(${PROJECT_SOURCE_DIR}/deploy/systemd/${unit}.service.in
                 ${PROJECT_BINARY_DIR}/systemd/${unit}.service @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/systemd/${unit}.service
          DESTINATION ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
  install(FILES ${PROJECT_SOURCE_DIR}/deploy/default/${unit} DESTINATION ${VIGIL_DEFAULTS_DIR})
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vigil)
set(CPACK_PACKAGE_VENDOR "vigil")
set(CPACK_PACKAGE_CONTACT "vigil maintainers <vigil@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "fault tolerance over RDMA: replicated execution and restartable servers")
set(CPACK_PACKAGE_DESCRIPTION
    "vigil runs replicas of a program on worker nodes and votes on what they do (DMR/TMR), and \
keeps per-client server state in a remote SSR store reached by RDMA so that crashed servers \
restart without their clients noticing. Binaries: vigil-voter, vigil-node, vigil-run, vigilctl, \
vigil-ssr-store, vigil-server, vigil-client, vigil-bench (helpers vigil-replica and vigil-executor \
in /usr/libexec/vigil); systemd units for vigil-node and vigil-ssr-store, which run as the system \
user vigil.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES TRUE)  # the build keeps debug info; the package does not
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # library dependencies from the binaries
set(CPACK_DEBIAN_PACKAGE_DEPENDS "rdma-core, ibverbs-providers, adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ibverbs-utils, perftest")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
# /etc/default files are configuration: kept on upgrade when the admin changed them.
if(VIGIL_DEFAULTS_DIR MATCHES "^/etc/")
  file(WRITE ${PROJECT_BINARY_DIR}/debian/conffiles
       "${VIGIL_DEFAULTS_DIR}/vigil-node\n${VIGIL_DEFAULTS_DIR}/vigil-ssr-store\n")
  set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_BINARY_DIR}/debian/conffiles)
endif()
# The daemons' system user (deploy/debian/postinst).
list(APPEND CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/deploy/debian/postinst)
include(CPack)
