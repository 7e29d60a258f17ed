#!/usr/bin/env python3
"""Follow a StreamWeaver gateway from Python, with resume.

The gRPC code is generated at start from the same .proto files as every other client
(grpcio-tools, into a temporary directory), so nothing here hand-writes a wire format. The loop
keeps one Subscribe call open; when it fails or stays silent longer than the watchdog allows, it
waits a jittered exponential backoff and subscribes again, resuming from the last position of
every partition (moved by events, heartbeats and gap notices; replaced by resets), and drops any
event at or before a position it already has. The events continue exactly where they stopped.

    pip install -r examples/python/requirements.txt
    python3 examples/python/follow.py --gateway localhost:8080 --topics stock_trades --symbols AAPL

Each event is printed as one line: topic/partition/offset, key, and the payload as JSON.
"""

import argparse
import importlib
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from google.protobuf import json_format

ROOT = Path(__file__).resolve().parents[2]
# Codes no retry can cure: the request or the credential was refused.
FATAL = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNIMPLEMENTED,
}


def generate(proto_dir: Path, out_dir: Path):
    """Generates the Python messages and stubs of streamweaver/v1 into out_dir; imports them."""
    from grpc_tools import protoc
    import grpc_tools

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(str(p) for p in (proto_dir / "streamweaver" / "v1").glob("*.proto"))
    if not protos:
        sys.exit(f"follow.py: no .proto files under {proto_dir}/streamweaver/v1")
    status = protoc.main(
        ["protoc", f"-I{proto_dir}", f"-I{well_known}", f"--python_out={out_dir}",
         f"--grpc_python_out={out_dir}", *protos]
    )
    if status != 0:
        sys.exit(f"follow.py: protoc failed ({status})")
    sys.path.insert(0, str(out_dir))
    stream_pb2 = importlib.import_module("streamweaver.v1.stream_pb2")
    events_pb2 = importlib.import_module("streamweaver.v1.events_pb2")
    stream_grpc = importlib.import_module("streamweaver.v1.stream_pb2_grpc")
    return stream_pb2, events_pb2, stream_grpc


class Follower:
    """One subscription that survives its connection."""

    def __init__(self, args, stream_pb2, events_pb2, stream_grpc):
        self.args = args
        self.pb = stream_pb2
        self.events_pb2 = events_pb2
        self.stub_type = stream_grpc.StreamServiceStub
        self.positions = {}  # (topic, partition) -> last offset delivered or passed over
        self.per_topic = {}
        self.events = 0
        self.duplicates = 0
        self.gaps = 0
        self.holes = 0
        self.reconnects = 0
        self.resumed_from = []
        self.events_after_resume = 0
        self.forced = False
        self.deadline = time.monotonic() + args.timeout if args.timeout else None

    def done(self):
        if self.args.max_events and self.events >= self.args.max_events:
            return True
        return self.deadline is not None and time.monotonic() >= self.deadline

    def channel(self):
        if self.args.ca_file:
            credentials = grpc.ssl_channel_credentials(Path(self.args.ca_file).read_bytes())
            return grpc.secure_channel(self.args.gateway, credentials)
        return grpc.insecure_channel(self.args.gateway)

    def request(self):
        resume = [
            self.events_pb2.Position(topic=topic, partition=partition, offset=offset)
            for (topic, partition), offset in sorted(self.positions.items())
        ]
        return self.pb.SubscribeRequest(
            topics=self.args.topics, symbols=self.args.symbols, resume_from=resume
        )

    def advance(self, position):
        key = (position.topic, position.partition)
        self.positions[key] = max(self.positions.get(key, position.offset), position.offset)

    def take(self, response):
        """Takes one response in; returns False when the subscription should be remade."""
        kind = response.WhichOneof("kind")
        if kind == "event":
            event = response.event
            key = (event.topic, event.partition)
            last = self.positions.get(key)
            if last is not None and event.offset <= last:
                self.duplicates += 1  # delivered before: not again
                return True
            if last is not None and event.offset != last + 1 and not self.args.filtered:
                self.holes += 1
            self.positions[key] = event.offset
            self.events += 1
            self.per_topic[event.topic] = self.per_topic.get(event.topic, 0) + 1
            if self.reconnects:
                self.events_after_resume += 1
            if not self.args.quiet:
                payload = getattr(event, event.WhichOneof("payload"))
                body = json_format.MessageToJson(payload, indent=None)
                print(f"{event.topic}/{event.partition}/{event.offset} {event.key} {body}", flush=True)
            if (self.args.reconnect_after and not self.forced
                    and self.events >= self.args.reconnect_after):
                self.forced = True
                print("follow.py: dropping the connection on purpose, to resume", file=sys.stderr)
                return False
        elif kind == "heartbeat":
            for position in response.heartbeat.positions:
                self.advance(position)
        elif kind == "gap":
            self.gaps += 1
            print(f"follow.py: gap of {response.gap.missed_events} events: {response.gap.reason}",
                  file=sys.stderr)
            for position in response.gap.last_positions:
                self.advance(position)
        elif kind == "reset":
            print(f"follow.py: positions reset: {response.reset.reason}", file=sys.stderr)
            for position in response.reset.positions:
                self.positions[(position.topic, position.partition)] = position.offset
        elif kind == "error":
            print(f"follow.py: gateway error {response.error.code}: {response.error.message}",
                  file=sys.stderr)
        return True

    def subscribe_once(self):
        """One connection: returns normally when it should be remade, raises RpcError on failure."""
        watchdog = self.args.heartbeat * self.args.missed_heartbeats
        last_heard = [time.monotonic()]
        stop = threading.Event()
        metadata = [("authorization", f"Bearer {self.args.token}")] if self.args.token else None
        with self.channel() as channel:
            call = self.stub_type(channel).Subscribe(self.request(), metadata=metadata)

            def watch():
                # No message for the watchdog's time (or the run is over): drop the call.
                while not stop.wait(0.05):
                    if time.monotonic() - last_heard[0] > watchdog or self.done():
                        call.cancel()
                        return

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            try:
                for response in call:
                    last_heard[0] = time.monotonic()
                    if not self.take(response) or self.done():
                        return
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.CANCELLED:
                    if not self.done():
                        print(f"follow.py: nothing heard for {watchdog:.1f}s", file=sys.stderr)
                    return
                raise
            finally:
                stop.set()
                call.cancel()

    def run(self):
        failures = 0
        while not self.done():
            if self.events or self.positions:
                # Not the first connection: say where it resumes.
                self.reconnects += 1
                self.resumed_from = [
                    {"topic": t, "partition": p, "offset": o}
                    for (t, p), o in sorted(self.positions.items())
                ]
            try:
                self.subscribe_once()
                failures = 0
            except grpc.RpcError as error:
                if error.code() in FATAL:
                    print(f"follow.py: refused: {error.code().name}: {error.details()}",
                          file=sys.stderr)
                    return 2
                ceiling = min(self.args.max_backoff, 0.1 * 2 ** failures)
                wait = random.uniform(ceiling / 2, ceiling)  # equal jitter
                failures += 1
                print(f"follow.py: {error.code().name}: {error.details()}; retrying in "
                      f"{wait:.2f}s", file=sys.stderr)
                time.sleep(wait)
        return 0

    def summary(self):
        return {
            "events": self.events,
            "per_topic": self.per_topic,
            "reconnects": self.reconnects,
            "resumed_from": self.resumed_from,
            "events_after_resume": self.events_after_resume,
            "duplicates_dropped": self.duplicates,
            "holes": self.holes,
            "gaps": self.gaps,
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", default=os.environ.get("GATEWAY_ADDRESS", "localhost:8080"),
                        help="host:port of the gateway (env GATEWAY_ADDRESS)")
    parser.add_argument("--topics", default="", help="comma-separated topics (default: all)")
    parser.add_argument("--symbols", default="", help="comma-separated symbols")
    parser.add_argument("--token", default=os.environ.get("STREAMWEAVER_SUBSCRIBE_TOKEN"),
                        help="bearer token or JWT (env STREAMWEAVER_SUBSCRIBE_TOKEN)")
    parser.add_argument("--ca-file", help="PEM CA of the gateway's TLS certificate: TLS on")
    parser.add_argument("--heartbeat", type=float, default=15.0,
                        help="the gateway's --heartbeat in seconds (default 15)")
    parser.add_argument("--missed-heartbeats", type=int, default=3,
                        help="silent heartbeat intervals before reconnecting (default 3)")
    parser.add_argument("--max-backoff", type=float, default=5.0,
                        help="longest wait between attempts, seconds (default 5)")
    parser.add_argument("--max-events", type=int, default=0, help="stop after this many events")
    parser.add_argument("--timeout", type=float, default=0, help="stop after this many seconds")
    parser.add_argument("--reconnect-after", type=int, default=0,
                        help="drop the connection once after this many events, to show resuming")
    parser.add_argument("--require-topics", default="",
                        help="fail unless events of each of these topics came")
    parser.add_argument("--proto-dir", default=str(ROOT / "proto"),
                        help="where streamweaver/v1/*.proto are (default: the repository's)")
    parser.add_argument("--quiet", action="store_true", help="print no events")
    parser.add_argument("--summary", action="store_true",
                        help="print what happened as one JSON line at the end")
    args = parser.parse_args()
    split = lambda value: [v for v in value.split(",") if v]
    args.topics, args.symbols = split(args.topics), split(args.symbols)
    args.filtered = bool(args.symbols)

    out_dir = Path(tempfile.mkdtemp(prefix="streamweaver-py-"))
    try:
        follower = Follower(args, *generate(Path(args.proto_dir), out_dir))
        try:
            status = follower.run()
        except KeyboardInterrupt:
            status = 130
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)

    summary = follower.summary()
    if args.summary:
        print(json.dumps(summary), flush=True)
    missing = [t for t in split(args.require_topics) if not summary["per_topic"].get(t)]
    if status == 0 and missing:
        print(f"follow.py: no events of {', '.join(missing)}", file=sys.stderr)
        status = 1
    if status == 0 and args.reconnect_after and not summary["events_after_resume"]:
        print("follow.py: nothing came after the forced reconnection", file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
