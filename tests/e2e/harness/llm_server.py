"""A stand-in for the model APIs the judge transform calls, speaking their real wire formats:
Anthropic Messages (POST /v1/messages, x-api-key, anthropic-version; answer {"type":"message",
"content":[{"type":"text",...}],"usage":{"input_tokens","output_tokens"}}) and OpenAI Chat
Completions (POST /v1/chat/completions, Authorization: Bearer; answer {"object":"chat.completion",
"choices":[{"message":{"role":"assistant","content":...}}],"usage":{"prompt_tokens",...}}).
Errors use each API's error shape ({"type":"error","error":{...}} / {"error":{...}}).

`mode` (settable while running) decides the answer:
  "path"       ALLOW when the envelope's url contains /allowed, else DENY (the default)
  "fenced"     as "path", but lower case and wrapped in a ```json fence
  "malformed"  prose instead of JSON
  "status:N"   HTTP status N with the API's error body
  "slow:S"     sleep S seconds, then answer as "path"
With `echo_key` an error body quotes the API key it was sent. Every request is recorded (`calls`: method, path, headers, parsed body, envelope)."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        srv = self.server.owner
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        body = json.loads(raw)
        user = body["messages"][-1]["content"]
        envelope = json.loads(user)
        with srv.lock:
            srv.calls.append({"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                              "body": body, "envelope": envelope, "raw": raw.decode()})
            mode = srv.mode
        provider = "anthropic" if self.path == ANTHROPIC_PATH else "openai" if self.path == OPENAI_PATH else None
        if provider is None:
            return self._send(404, {"error": "not found"})
        if mode.startswith("status:"):
            err = _error_body(provider, int(mode[7:]))
            if srv.echo_key:  # a careless endpoint quoting the credential it refused
                key = self.headers.get("x-api-key") or self.headers.get("Authorization", "")
                err["error"]["message"] += f" (invalid key {key})"
            return self._send(int(mode[7:]), err)
        if mode.startswith("slow:"):
            time.sleep(float(mode[5:]))
        allowed = "/allowed" in envelope.get("url", "")
        text = json.dumps({"decision": "ALLOW" if allowed else "DENY",
                           "reason": "path is allowed" if allowed else "path is not allowed"})
        if mode == "fenced":
            text = "```json\n" + text.replace("ALLOW", "allow").replace("DENY", "deny") + "\n```"
        elif mode == "malformed":
            text = "I think this request is probably fine."
        self._send(200, _answer(provider, body["model"], text))

    def _send(self, status, obj):
        data = json.dumps(obj).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the proxy gave up (timeout)


def _answer(provider, model, text):
    if provider == "anthropic":
        return {"id": "msg_test", "type": "message", "role": "assistant", "model": model + "-test",
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 321, "output_tokens": 17}}
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model + "-test",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 321, "completion_tokens": 17, "total_tokens": 338}}


def _error_body(provider, status):
    kind = "rate_limit_error" if status == 429 else "api_error"
    if provider == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": f"test error {status}"}}
    return {"error": {"message": f"test error {status}", "type": kind, "param": None, "code": None}}


class LLMServer:
    def __init__(self, host="127.0.0.3", port=0, mode="path", tls_context=None):
        self.mode = mode
        self.echo_key = False
        self.calls = []
        self.lock = threading.Lock()
        self._srv = ThreadingHTTPServer((host, port), _Handler)
        self._srv.daemon_threads = True
        self._srv.owner = self
        self.tls = tls_context is not None
        if self.tls:
            self._srv.socket = tls_context.wrap_socket(self._srv.socket, server_side=True)
        self.host, self.port = self._srv.server_address[:2]
        self._thread = None

    @property
    def base_url(self):
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def set_mode(self, mode):
        with self.lock:
            self.mode = mode

    def call_count(self):
        with self.lock:
            return len(self.calls)

    def start(self):
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._srv.shutdown()
        self._srv.server_close()
