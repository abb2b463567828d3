# Install rules and the Debian package (CPack DEB), included by CMakeLists.txt.
#   scripts/package.sh        build + `cpack --config build/CPackConfig.cmake -G DEB`
# The package: /usr/bin/iron-proxy, /etc/iron-proxy/proxy.yaml (a conffile: the embedded default,
# loopback only, with its CA in the systemd state directory), /lib/systemd/system/iron-proxy.service,
# /usr/share/doc/iron-proxy/copyright. Depends comes from dpkg-shlibdeps on the built binary.

# The packaged proxy.yaml is the embedded default config (src/config/default_config.cpp) with the
# state directory the unit gives the service (StateDirectory=iron-proxy): one text, two uses.
set(IRON_PACKAGED_STATE_DIR /var/lib/iron-proxy)
set(default_config_src ${CMAKE_SOURCE_DIR}/src/config/default_config.cpp)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${default_config_src})
file(READ ${default_config_src} default_config_text)
string(FIND "${default_config_text}" "R\"yaml(" yaml_begin)
string(FIND "${default_config_text}" ")yaml\"" yaml_end)
if(yaml_begin LESS 0 OR yaml_end LESS yaml_begin)
  message(FATAL_ERROR "packaging: no R\"yaml(...)yaml\" default config found in ${default_config_src}")
endif()
math(EXPR yaml_begin "${yaml_begin} + 7")
math(EXPR yaml_len "${yaml_end} - ${yaml_begin}")
string(SUBSTRING "${default_config_text}" ${yaml_begin} ${yaml_len} packaged_yaml)
string(REPLACE "\${IRON_STATE_DIR}" "${IRON_PACKAGED_STATE_DIR}" packaged_yaml "${packaged_yaml}")
# The embedded text's first two lines speak about running without -config; the package runs it
# with -config from the unit.
string(REGEX REPLACE "^# iron-proxy built-in default configuration[^\n]*\n# Copy it[^\n]*\n" "" packaged_yaml "${packaged_yaml}")
set(packaged_header "# /etc/iron-proxy/proxy.yaml: iron-proxy's packaged configuration (the systemd unit\n# iron-proxy.service runs `iron-proxy -config /etc/iron-proxy/proxy.yaml`). It is the binary's\n# embedded default: loopback listeners only, default-deny. The CA is made on the first start in\n# the unit's state directory (${IRON_PACKAGED_STATE_DIR}). Edit freely: dpkg keeps your changes on\n# upgrade (conffile). Check a change with: iron-proxy -check -config /etc/iron-proxy/proxy.yaml\n")
file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/packaging/proxy.yaml CONTENT "${packaged_header}${packaged_yaml}" @ONLY)

install(TARGETS iron-proxy RUNTIME DESTINATION bin)
install(FILES ${CMAKE_BINARY_DIR}/packaging/proxy.yaml DESTINATION /etc/iron-proxy
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/systemd/iron-proxy.service DESTINATION /lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/debian/copyright DESTINATION share/doc/iron-proxy)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME iron-proxy)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "iron-proxy maintainers <iron-proxy@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "egress proxy for untrusted workloads: default-deny allowlist, TLS interception, audit log")
set(CPACK_PACKAGE_DESCRIPTION "iron-proxy sits between untrusted workloads (CI jobs, AI agents, sandboxes) and the network.\nEvery request is checked against a default-deny allowlist, TLS is intercepted with leaf\ncertificates minted from your CA, secrets are swapped in at the proxy, and every request\nproduces one structured JSON audit record. Drop-in for the Go iron-proxy's configuration.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # iron-proxy_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends: libssl3, libnghttp2-14, libgrpc++1.51, ...
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")  # the system trust store for upstream TLS
# conffiles (dpkg keeps an edited proxy.yaml on upgrade) and the systemd maintainer scripts.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/debian/conffiles
    ${CMAKE_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_SOURCE_DIR}/packaging/debian/prerm
    ${CMAKE_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
