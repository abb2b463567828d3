#include "app/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/log.hpp"

namespace iron::app {

namespace {

// "/run/systemd/notify" is a path; "@name" an abstract socket (leading NUL, length without a
// terminator), as sd_notify(3) reads the variable.
bool notify_address(const char* text, sockaddr_un& addr, socklen_t& len) {
    const std::size_t n = std::strlen(text);
    if (n == 0 || n >= sizeof(addr.sun_path) || (text[0] != '/' && text[0] != '@')) return false;
    std::memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, text, n);
    if (text[0] == '@') addr.sun_path[0] = '\0';
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n + (text[0] == '/' ? 1 : 0));
    return true;
}

}  // namespace

void notify_service_manager(std::string_view state) {
    const char* socket_name = std::getenv("NOTIFY_SOCKET");
    if (socket_name == nullptr || *socket_name == '\0') return;
    sockaddr_un addr{};
    socklen_t len = 0;
    if (!notify_address(socket_name, addr, len)) {
        log::warn("NOTIFY_SOCKET is not a unix socket address; systemd is not notified", {{"NOTIFY_SOCKET", socket_name}});
        return;
    }
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log::warn("systemd notification failed", {{"state", std::string(state)}, {"error", std::strerror(errno)}});
        return;
    }
    const ssize_t sent =
        ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), len);
    if (sent < 0)
        log::warn("systemd notification failed", {{"state", std::string(state)}, {"error", std::strerror(errno)}});
    ::close(fd);
}

}  // namespace iron::app
