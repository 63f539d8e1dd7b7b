#!/usr/bin/env python3
"""The floor under a sequential run: N back-to-back streamed chat requests to llm-stub over
one keep-alive connection, from a minimal client (python's http.client, TCP_NODELAY).

    python3 bench/stub_rtt.py BASE_URL [N]        prints JSON: median/min/max ms per request

At --latency-ms L the stub sleeps L ms before its headers; the median here minus L is what the
stub, the timers and the loopback add per request, which `super` cannot go below.
"""

import http.client
import json
import socket
import statistics
import sys
import time
from urllib.parse import urlparse


def main():
    url = urlparse(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    body = json.dumps({"model": "bench", "stream": True, "temperature": 0.0,
                       "messages": [{"role": "system", "content": "You are Bench. " * 20},
                                    {"role": "user", "content": "Step 1 of 'bench'. " * 20}]})
    conn = http.client.HTTPConnection(url.hostname, url.port)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    for i in range(n + 2):
        t = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body,
                     {"Content-Type": "application/json", "Authorization": "Bearer x"})
        r = conn.getresponse()
        data = r.read()
        dt = (time.perf_counter() - t) * 1e3
        if r.status != 200 or b"[DONE]" not in data:
            raise SystemExit(f"bad reply {r.status}: {data[:200]!r}")
        if i >= 2:  # two warm-up requests
            times.append(dt)
    print(json.dumps({"requests": n, "median_ms": round(statistics.median(times), 3),
                      "min_ms": round(min(times), 3), "max_ms": round(max(times), 3)}))


if __name__ == "__main__":
    main()
