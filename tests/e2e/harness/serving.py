"""The serving loop the scripted test servers share: a listening socket with a short timeout, one
thread per accepted connection, and a stop that ends every open connection at once."""
import socket
import threading
import time


def listen(host, port=0, backlog=128) -> socket.socket:
    """A TCP listener on (host, port) whose accept() gives up every 0.1 s (to see a stop)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.settimeout(0.1)
    return sock


def accept_loop(sock, stopping: threading.Event, serve, threads=None, seconds=None):
    """Accepts on `sock` until `stopping` is set, the socket is closed (by a stop) or `seconds`
    passed; each connection goes to serve(conn) in a daemon thread of its own (appended to
    `threads` when given, for a stop to join)."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while not stopping.is_set() and (deadline is None or time.monotonic() < deadline):
        try:
            conn, _ = sock.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        t = threading.Thread(target=serve, args=(conn,), daemon=True)
        if threads is not None:
            threads.append(t)
        t.start()


def start_accepting(sock, stopping, serve, name, threads=None, seconds=None) -> threading.Thread:
    """accept_loop in a daemon thread named `name`; returns the thread."""
    t = threading.Thread(target=accept_loop, args=(sock, stopping, serve, threads, seconds), daemon=True,
                         name=name)
    t.start()
    return t


def shutdown_all(lock, open_socks):
    """Shuts down both ways every socket of the set `open_socks` (read under `lock`): the threads
    serving them see EOF at once instead of waiting out their timeouts."""
    with lock:
        socks = list(open_socks)
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
