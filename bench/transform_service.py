"""A transform.v1.TransformService for the `iron-grpc` bench target: python3-grpcio (Debian's, so
run it with /usr/bin/python3), h2c on 127.0.0.1, answering CONTINUE to every TransformRequest and
TransformResponse. The message classes are compiled by protoc from proto/transform/v1 into --out.

  /usr/bin/python3 bench/transform_service.py --proto-root proto --out DIR --port-file FILE

Writes the bound port to --port-file once serving; on SIGTERM prints how many calls it answered
and exits."""
import argparse
import importlib
import signal
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto-root", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--workers", type=int, default=16)
    a = ap.parse_args()
    import grpc
    Path(a.out).mkdir(parents=True, exist_ok=True)
    subprocess.run(["protoc", f"-I{a.proto_root}", f"--python_out={a.out}", "transform/v1/transform.proto"],
                   check=True, timeout=60)
    sys.path.insert(0, a.out)
    pb = importlib.import_module("transform.v1.transform_pb2")
    calls = [0]
    cont = pb.TRANSFORM_ACTION_CONTINUE

    def on_request(req, ctx):
        calls[0] += 1
        return pb.TransformRequestResponse(action=cont)

    def on_response(req, ctx):
        calls[0] += 1
        return pb.TransformResponseResponse(action=cont)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=a.workers))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("transform.v1.TransformService", {
        "TransformRequest": grpc.unary_unary_rpc_method_handler(
            on_request, request_deserializer=pb.TransformRequestRequest.FromString,
            response_serializer=pb.TransformRequestResponse.SerializeToString),
        "TransformResponse": grpc.unary_unary_rpc_method_handler(
            on_response, request_deserializer=pb.TransformResponseRequest.FromString,
            response_serializer=pb.TransformResponseResponse.SerializeToString),
    }),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    Path(a.port_file).write_text(str(port))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    server.stop(grace=None)
    print(f"transform service answered {calls[0]} calls", flush=True)


if __name__ == "__main__":
    main()
