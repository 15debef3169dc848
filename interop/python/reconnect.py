"""paho-mqtt through a proxy that cuts connections: one client subscribes
(persistent session), another publishes COUNT QoS 1 messages (persistent
session), and the run succeeds when every message arrived at least once and
both clients reconnected after the proxy cut them.

Usage: python3 reconnect.py HOST PORT TOPIC COUNT
Prints "ok COUNT received=N sub_connects=S pub_connects=P" and exits 0 on
success; exits 1 with a reason otherwise. Every wait is bounded.
"""
import argparse
import os
import sys
import threading
import time

import paho.mqtt.client as mqtt

WAIT = 30  # seconds, for each bounded wait


def main() -> int:
    parser = argparse.ArgumentParser(description="paho-mqtt QoS 1 redelivery across cuts")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("topic")
    parser.add_argument("count", type=int)
    args = parser.parse_args()
    host, port, topic, count = args.host, args.port, args.topic, args.count
    lock = threading.Lock()
    received = set()
    deliveries = [0]
    connects = {"sub": 0, "pub": 0}
    done = threading.Event()
    subscribed = threading.Event()
    pub_connected = threading.Event()

    def client(name: str) -> mqtt.Client:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"py-px-{name}-{os.getpid()}",
                        protocol=mqtt.MQTTv311, clean_session=False)
        # Reconnect soon after a cut; paho's loop thread reconnects by itself.
        c.reconnect_delay_set(min_delay=0.05, max_delay=0.5)
        return c

    sub = client("sub")

    def sub_connected(c, _u, flags, _rc, _p):
        with lock:
            connects["sub"] += 1
        if not flags.session_present:
            c.subscribe(topic, 1)

    def on_message(_c, _u, msg):
        with lock:
            deliveries[0] += 1
            received.add(msg.payload.decode())
            if len(received) == count:
                done.set()

    sub.on_connect = sub_connected
    sub.on_subscribe = lambda _c, _u, _mid, _codes, _p: subscribed.set()
    sub.on_message = on_message
    sub.connect(host, port, keepalive=30)
    sub.loop_start()
    if not subscribed.wait(WAIT):
        print("fail: no SUBACK", file=sys.stderr)
        return 1

    pub = client("pub")

    def pub_on_connect(_c, _u, _f, _rc, _p):
        with lock:
            connects["pub"] += 1
        pub_connected.set()

    pub.on_connect = pub_on_connect
    pub.max_inflight_messages_set(count)
    pub.connect(host, port, keepalive=30)
    pub.loop_start()
    if not pub_connected.wait(WAIT):
        print("fail: publisher got no CONNACK", file=sys.stderr)
        return 1
    # Queued in paho even while it is cut off; it sends (and resends
    # unacknowledged ones) once reconnected.
    infos = [pub.publish(topic, f"msg-{i}", qos=1) for i in range(count)]
    ok = done.wait(WAIT)
    deadline = time.monotonic() + WAIT
    for info in infos:
        try:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        except (RuntimeError, ValueError):
            break
    acked = all(i.is_published() for i in infos)
    pub.disconnect()
    pub.loop_stop()
    sub.disconnect()
    sub.loop_stop()
    with lock:
        missing = sorted(set(f"msg-{i}" for i in range(count)) - received)
        line = (f"received={len(received)} deliveries={deliveries[0]} "
                f"sub_connects={connects['sub']} pub_connects={connects['pub']}")
    if not ok:
        print(f"fail: missing {missing} {line}", file=sys.stderr)
        return 1
    if not acked:
        print(f"fail: publisher not acknowledged for every message {line}", file=sys.stderr)
        return 1
    print(f"ok {count} {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
