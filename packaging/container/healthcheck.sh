#!/bin/bash
# The image's HEALTHCHECK: GET /healthz on the metrics listener, with bash's /dev/tcp (the slim
# runtime image has no curl). The port is IRON_METRICS_LISTEN's, else 9090 (the image's config).
set -u
port=${IRON_METRICS_LISTEN:-:9090}
port=${port##*:}
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 5 status <&3 || exit 1
[[ $status == "HTTP/1.1 200"* ]]
