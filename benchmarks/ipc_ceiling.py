"""The SDK client's own ceiling: the benchmark's real-SDK publisher against a server that does nothing but frame.

`python -m benchmarks.ipc_ceiling [--count N]`: the same publisher component as `benchmarks.ipc` (1 KiB,
synchronous and pipelined), connected to localgg's transport and RPC layers with every operation answered at
once with an empty response: no authorization, no parsing, no subscriber to deliver to. Whatever msg/s it
reaches, no server can beat with this client on this machine. Writes build/benchmarks/ipc_ceiling.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from localgg.ipc import IpcServices, Peer
from localgg.server import Connections, IpcConnection, Limits, Tokens

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "build" / "benchmarks" / "ipc_ceiling.json"
COMPONENT = "BenchPub"


class AnswerOnly:
    """Services that answer every operation with `{}` and keep no state."""

    def call(self, peer: Peer, stream_id: int, operation: str, payload: bytes) -> None:
        peer.send(stream_id, f"{operation}Response", b"{}", True)

    def stream_closed(self, peer: Peer, stream_id: int) -> None:
        pass

    def peer_closed(self, peer: Peer, stream_ids: set[int]) -> None:
        pass


async def one_run(count: int, size: int, inflight: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="ggc-", dir="/tmp"))
    socket_path, ready, out = folder / "ipc.socket", folder / "ready", folder / "pub.json"
    tokens, connections = Tokens(), Connections()
    services = cast(IpcServices, AnswerOnly())
    loop = asyncio.get_running_loop()
    server = await loop.create_unix_server(
        lambda: IpcConnection(services, tokens, connections, Limits()), str(socket_path)
    )
    ready.write_text("ready")
    env = {
        **os.environ,
        "SVCUID": tokens.issue(COMPONENT),
        "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": str(socket_path),
    }
    cmd = [sys.executable, "-m", "benchmarks.ipc_peer", "publish", "--count", str(count), "--size", str(size)]
    cmd += ["--inflight", str(inflight), "--out", str(out), "--ready", str(ready)]
    cpu_before = time.process_time()
    publisher = await asyncio.create_subprocess_exec(*cmd, cwd=REPO, env=env, stderr=subprocess.DEVNULL)
    if await publisher.wait() != 0:
        raise RuntimeError(f"the publisher failed ({publisher.returncode})")
    server_cpu = time.process_time() - cpu_before
    server.close()
    result = json.loads(out.read_text())
    seconds = (result["end_ns"] - result["start_ns"]) / 1e9
    return {
        "size_bytes": size,
        "mode": "sync" if inflight <= 1 else f"pipelined ({inflight} in flight)",
        "messages": count,
        "msg_per_s": round(count / seconds),
        "server_cpu_us_per_msg": round(server_cpu / count * 1e6, 1),
        "publisher_cpu_us_per_msg": round(result["cpu_s"] / count * 1e6, 1),
    }


async def run(count: int) -> list[dict[str, Any]]:
    return [await one_run(count, 1024, inflight) for inflight in (1, 256)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000, help="messages per run")
    args = parser.parse_args()
    runs = asyncio.run(run(args.count))
    for result in runs:
        print(
            f"  1024 B  {result['mode']:<26} {result['msg_per_s']:>7} msg/s  CPU µs/msg: "
            f"server {result['server_cpu_us_per_msg']:>5.1f} pub {result['publisher_cpu_us_per_msg']:>5.1f}"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
