"""A gRPC upstream for tests (python3-grpcio, TLS with the upstream certificate; gRPC core offers
ALPN h2). Generic handlers on raw bytes, so no protoc and no generated code:

  /iron.test.Echo/Unary         returns the request message as is
  /iron.test.Echo/ServerStream  request b"N" → N messages b"message <i>" (N at most 10,000)
  /iron.test.Echo/ClientStream  returns b"<count> <total bytes>" of the messages received
  /iron.test.Echo/Bidi          echoes every message as it arrives
  /iron.test.Echo/Fail          aborts with NOT_FOUND and FAIL_MESSAGE, trailing metadata
                                x-detail: widget-42

Every call is recorded in `calls` (method, invocation metadata as [key, value] pairs, peer).
Client helpers: `channel(...)` (optionally via a CONNECT proxy with grpc.http_proxy), and
`stubs(channel)` giving the four call shapes with no (de)serializers.
"""
import threading
from concurrent import futures
from pathlib import Path

import grpc

SERVICE = "iron.test.Echo"
FAIL_MESSAGE = "widget 42 not found (100% sure) \u00fc"
MAX_MESSAGE = 8 << 20


class GrpcUpstream:
    def __init__(self, host="127.0.0.2", port=0, cert_path=None, key_path=None, name="grpc-upstream"):
        self.name = name
        self.lock = threading.Lock()
        self.calls = []
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=16),
            options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", MAX_MESSAGE),
                     ("grpc.max_send_message_length", MAX_MESSAGE)])
        creds = grpc.ssl_server_credentials(
            [(Path(key_path).read_bytes(), Path(cert_path).read_bytes())])
        self.host = host
        self.port = self.server.add_secure_port(f"{host}:{port}", creds)
        if not self.port:
            raise OSError(f"gRPC server could not bind {host}:{port}")
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
            "Unary": grpc.unary_unary_rpc_method_handler(self._unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(self._server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(self._client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(self._bidi),
            "Fail": grpc.unary_unary_rpc_method_handler(self._fail),
        }),))

    def _record(self, method, context):
        with self.lock:
            self.calls.append({"method": method,
                               "metadata": [[k, v] for k, v in context.invocation_metadata()],
                               "peer": context.peer()})

    def _unary(self, request, context):
        self._record("Unary", context)
        return request

    def _server_stream(self, request, context):
        self._record("ServerStream", context)
        for i in range(min(int(request or b"0"), 10_000)):
            yield b"message %d" % i

    def _client_stream(self, request_iterator, context):
        self._record("ClientStream", context)
        count = total = 0
        for msg in request_iterator:
            count += 1
            total += len(msg)
        return b"%d %d" % (count, total)

    def _bidi(self, request_iterator, context):
        self._record("Bidi", context)
        for msg in request_iterator:
            yield msg

    def _fail(self, request, context):
        self._record("Fail", context)
        context.set_trailing_metadata((("x-detail", "widget-42"),))
        context.abort(grpc.StatusCode.NOT_FOUND, FAIL_MESSAGE)

    def calls_for(self, method):
        with self.lock:
            return [c for c in self.calls if c["method"] == method]

    def start(self):
        self.server.start()
        return self

    def server_close(self):
        self.server.stop(0)

    def stop(self):
        self.server.stop(0).wait(5)


def channel(target, root_cert_path, *, server_name=None, authority=None, http_proxy=None):
    """A TLS channel to `target` trusting root_cert_path. server_name overrides the name checked
    in the certificate (and sent as SNI); authority sets :authority; http_proxy
    ("http://host:port") makes gRPC tunnel through that proxy with CONNECT."""
    options = [("grpc.max_receive_message_length", MAX_MESSAGE),
               ("grpc.max_send_message_length", MAX_MESSAGE),
               ("grpc.enable_retries", 0)]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    if authority:
        options.append(("grpc.default_authority", authority))
    if http_proxy:
        options.append(("grpc.http_proxy", http_proxy))
    else:
        options.append(("grpc.enable_http_proxy", 0))
    creds = grpc.ssl_channel_credentials(root_certificates=Path(root_cert_path).read_bytes())
    return grpc.secure_channel(target, creds, options=options)


class Stubs:
    def __init__(self, ch):
        self.unary = ch.unary_unary(f"/{SERVICE}/Unary")
        self.server_stream = ch.unary_stream(f"/{SERVICE}/ServerStream")
        self.client_stream = ch.stream_unary(f"/{SERVICE}/ClientStream")
        self.bidi = ch.stream_stream(f"/{SERVICE}/Bidi")
        self.fail = ch.unary_unary(f"/{SERVICE}/Fail")
