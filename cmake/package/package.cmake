# The Debian package (GEOIP_PACKAGE=ON), made by CPack's DEB generator from
# the install rules below, which are the one list of what the package holds:
#
#   cmake -S . -B build-deb -DGEOIP_PACKAGE=ON
#   cmake --build build-deb --target package    # build-deb/ebpf-geoip-exporter_*.deb
#
#   /usr/bin/ebpf_geoip_exporter                       the exporter
#   /usr/lib/ebpf-geoip/libssl.so, libcrypto.so        OpenSSL as civetweb loads it
#   /usr/share/man/man1/ebpf_geoip_exporter.1.gz       from its --help (help2man)
#   /usr/share/ebpf-geoip/*.mmdb, README.md, licences  the bundled databases
#   /usr/share/ebpf-geoip/grafana/dashboards/          the Grafana dashboard
#   /usr/share/ebpf-geoip/grafana/gazetteer/           its countries gazetteer
#   /usr/share/ebpf-geoip/prometheus/rules/            recording and alerting rules
#   /usr/lib/systemd/system/ebpf_geoip_exporter.service  deploy/systemd's unit
#   /usr/lib/sysusers.d/ebpf_geoip_exporter.conf       its user, ebpf-geoip
#   /etc/default/ebpf_geoip_exporter                   its flags (a conffile)
#
# Depends comes from the binary's shared libraries (dpkg-shlibdeps), so a
# package is for the Debian release it was built on: build it there.
# tests/package/ builds it for Debian 12 and 13 and installs each into a
# fresh root file system of its release.

include(GNUInstallDirs)
find_program(GEOIP_HELP2MAN help2man)
find_program(GEOIP_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(NOT GEOIP_HELP2MAN OR NOT GEOIP_DPKG_SHLIBDEPS)
  message(FATAL_ERROR "GEOIP_PACKAGE=ON needs help2man and dpkg-shlibdeps: "
    "apt-get install help2man dpkg-dev")
endif()

set(geoip_package_dir ${CMAKE_CURRENT_LIST_DIR})
set(geoip_share ${CMAKE_INSTALL_DATADIR}/ebpf-geoip)
if(NOT GEOIP_DATA_DIR STREQUAL "${CMAKE_INSTALL_FULL_DATADIR}/ebpf-geoip")
  message(FATAL_ERROR "the package installs the databases in "
    "${CMAKE_INSTALL_FULL_DATADIR}/ebpf-geoip, but the binary would look in "
    "GEOIP_DATA_DIR=${GEOIP_DATA_DIR}: leave GEOIP_DATA_DIR unset")
endif()

# The exporter and its databases, with what their licences ask to ship.
install(TARGETS ebpf_geoip_exporter RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The OpenSSL civetweb loads (exporter/web/civetweb_tls/libssl_shim.c): the
# shim as libssl.so and a link named libcrypto.so, in a directory of the
# package's own that the binary's DT_RPATH names.
set(geoip_private_lib ${CMAKE_INSTALL_PREFIX}/lib/ebpf-geoip)
set_target_properties(ebpf_geoip_exporter PROPERTIES INSTALL_RPATH ${geoip_private_lib})
install(TARGETS geoip_civetweb_libssl LIBRARY DESTINATION ${geoip_private_lib})
install(FILES ${GEOIP_CIVETWEB_TLS_DIR}/libcrypto.so DESTINATION ${geoip_private_lib})
install(FILES
  ${CMAKE_SOURCE_DIR}/data/geo-whois-asn-country.mmdb
  ${CMAKE_SOURCE_DIR}/data/ip-location-db-asn.mmdb
  ${CMAKE_SOURCE_DIR}/data/README.md
  ${CMAKE_SOURCE_DIR}/data/NRO_LICENSE
  ${CMAKE_SOURCE_DIR}/data/DBIP-LICENSE
  ${CMAKE_SOURCE_DIR}/data/ROUTEVIEWS-LICENSE
  DESTINATION ${geoip_share})
# Files for Grafana and Prometheus to read where they are (a provisioning
# path, rule_files), not documentation: /usr/share/doc may be left out of an
# installation (dpkg's path-exclude), these must not.
install(DIRECTORY ${CMAKE_SOURCE_DIR}/grafana/dashboards/
  DESTINATION ${geoip_share}/grafana/dashboards FILES_MATCHING PATTERN "*.json")
# The dashboard's geomaps look countries up in this gazetteer, which Grafana
# serves once it is copied to its public/gazetteer/ebpf-geoip-countries.json
# (grafana/README.md says why).
install(FILES ${CMAKE_SOURCE_DIR}/grafana/gazetteer/countries.json
  DESTINATION ${geoip_share}/grafana/gazetteer)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/prometheus/rules/
  DESTINATION ${geoip_share}/prometheus/rules FILES_MATCHING PATTERN "*.yml")

# deploy/systemd's unit, with the packaged binary's path and man page; its
# manual-install comment does not apply to a package.
file(READ ${CMAKE_SOURCE_DIR}/deploy/systemd/ebpf_geoip_exporter.service geoip_unit)
string(REPLACE "ExecStart=/usr/local/bin/ebpf_geoip_exporter "
  "ExecStart=${CMAKE_INSTALL_FULL_BINDIR}/ebpf_geoip_exporter " geoip_unit "${geoip_unit}")
string(REPLACE "Documentation=man:systemd.exec(5)"
  "Documentation=man:ebpf_geoip_exporter(1) man:systemd.exec(5)" geoip_unit "${geoip_unit}")
string(REGEX REPLACE "# Install:\n(#   [^\n]*\n)+"
  "# Installed by the Debian package ebpf-geoip-exporter.\n" geoip_unit "${geoip_unit}")
string(REGEX MATCHALL "\nExecStart=${CMAKE_INSTALL_FULL_BINDIR}/ebpf_geoip_exporter |\nDocumentation=man:ebpf_geoip_exporter|\n# Installed by"
  geoip_unit_changes "${geoip_unit}")
list(LENGTH geoip_unit_changes geoip_unit_changes)
if(NOT geoip_unit_changes EQUAL 3)
  message(FATAL_ERROR "deploy/systemd/ebpf_geoip_exporter.service changed: "
    "cmake/package/package.cmake no longer finds its ExecStart, Documentation or Install lines")
endif()
file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/package/ebpf_geoip_exporter.service CONTENT "${geoip_unit}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${CMAKE_SOURCE_DIR}/deploy/systemd/ebpf_geoip_exporter.service)
# systemd's own directories, the same on every merged-/usr Debian (12 on).
install(FILES ${CMAKE_BINARY_DIR}/package/ebpf_geoip_exporter.service
  DESTINATION lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/systemd/ebpf_geoip_exporter.sysusers
  DESTINATION lib/sysusers.d RENAME ebpf_geoip_exporter.conf)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/systemd/ebpf_geoip_exporter.default
  DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/default RENAME ebpf_geoip_exporter)

# The man page, from --help at build time, with the packaged paths added.
configure_file(${geoip_package_dir}/ebpf_geoip_exporter.h2m.in
  ${CMAKE_BINARY_DIR}/package/ebpf_geoip_exporter.h2m @ONLY)
set(geoip_man ${CMAKE_BINARY_DIR}/package/ebpf_geoip_exporter.1)
add_custom_command(OUTPUT ${geoip_man}.gz
  COMMAND ${GEOIP_HELP2MAN} --no-info --no-discard-stderr --section=1
    "--name=accepted TCP connections by client country, for Prometheus"
    --version-string=${PROJECT_VERSION}
    --include=${CMAKE_BINARY_DIR}/package/ebpf_geoip_exporter.h2m
    --output=${geoip_man} $<TARGET_FILE:ebpf_geoip_exporter>
  COMMAND gzip -9nf ${geoip_man}
  DEPENDS ebpf_geoip_exporter ${CMAKE_BINARY_DIR}/package/ebpf_geoip_exporter.h2m
  COMMENT "Generating the man page from ebpf_geoip_exporter --help"
  VERBATIM)
add_custom_target(geoip_man_page ALL DEPENDS ${geoip_man}.gz)
install(FILES ${geoip_man}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# The package. Its version names the Debian release it was built for
# (0.1.0-1~deb12), so a 12 build upgrades to a 13 one with the release.
set(geoip_debian_release "")
if(EXISTS /etc/os-release)
  file(STRINGS /etc/os-release geoip_os_version_id REGEX "^VERSION_ID=")
  string(REGEX REPLACE "^VERSION_ID=\"?([0-9]+)\"?$" "\\1" geoip_debian_release "${geoip_os_version_id}")
endif()
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ebpf-geoip-exporter)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_PACKAGE_CONTACT "ebpf_geoip_exporter developers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "accepted TCP connections by client country, for Prometheus (eBPF)")
set(CPACK_PACKAGE_DESCRIPTION "\
An eBPF probe on the kernel's TCP accept path counts every accepted
connection by peer address and local port, inside the kernel, without
touching the services. The exporter geolocates the peers with a bundled
country and AS database and serves Prometheus metrics and a live world map.
.
The systemd unit ebpf_geoip_exporter.service runs it as the user
ebpf-geoip with CAP_BPF and CAP_PERFMON only; its flags are in
/etc/default/ebpf_geoip_exporter. A Grafana dashboard and Prometheus rules
are in /usr/share/ebpf-geoip.")
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
if(geoip_debian_release MATCHES "^[0-9]+$")
  set(CPACK_DEBIAN_PACKAGE_RELEASE "1~deb${geoip_debian_release}")
endif()
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The unit's user is made by systemd-sysusers in postinst (systemd has it,
# or the standalone one where systemd is not the init); ExecReload runs
# /bin/kill (procps).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd | systemd-sysusers, procps")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${geoip_package_dir}/conffiles ${geoip_package_dir}/postinst
  ${geoip_package_dir}/prerm ${geoip_package_dir}/postrm)
include(CPack)
