"""paho-mqtt through a broker: one client subscribes, another publishes COUNT
messages at QoS, and the run succeeds when every message arrived in order.

Usage: python3 pubsub.py [--websockets PATH] HOST PORT TOPIC QOS COUNT [CA_FILE]
With --websockets, MQTT travels over WebSocket (paho's "websockets"
transport) to PATH; with CA_FILE, over TLS (wss:// with --websockets).
Prints "ok COUNT" and exits 0 on success; exits 1 with a reason otherwise.
"""
import argparse
import os
import sys
import threading

import paho.mqtt.client as mqtt


def main() -> int:
    parser = argparse.ArgumentParser(description="paho-mqtt publish/subscribe round trip")
    parser.add_argument("--websockets", metavar="PATH", help="MQTT over WebSocket to PATH")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("topic")
    parser.add_argument("qos", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("ca_file", nargs="?")
    args = parser.parse_args()
    host, port, topic, qos, count = args.host, args.port, args.topic, args.qos, args.count
    ca_file = args.ca_file
    done = threading.Event()
    subscribed = threading.Event()
    received = []
    errors = []

    def client(name: str) -> mqtt.Client:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"py-{name}-{os.getpid()}",
                        protocol=mqtt.MQTTv311, clean_session=True,
                        transport="websockets" if args.websockets else "tcp")
        if args.websockets:
            c.ws_set_options(path=args.websockets)
        if ca_file:
            c.tls_set(ca_certs=ca_file)
        return c

    sub = client("sub")

    def on_subscribe(_c, _u, _mid, reason_codes, _p):
        if reason_codes[0].value != qos:
            errors.append(f"granted {reason_codes[0]}")
        subscribed.set()

    def on_message(_c, _u, msg):
        received.append(msg.payload.decode())
        if len(received) == count:
            done.set()

    sub.on_subscribe = on_subscribe
    sub.on_message = on_message
    sub.on_connect = lambda c, _u, _f, rc, _p: c.subscribe(topic, qos)
    sub.connect(host, port, keepalive=30)
    sub.loop_start()
    if not subscribed.wait(10):
        print("fail: no SUBACK", file=sys.stderr)
        return 1

    pub = client("pub")
    pub_connected = threading.Event()
    pub.on_connect = lambda _c, _u, _f, _rc, _p: pub_connected.set()
    pub.connect(host, port, keepalive=30)
    pub.loop_start()
    # paho drops QoS 0 messages published before CONNACK.
    if not pub_connected.wait(10):
        print("fail: publisher got no CONNACK", file=sys.stderr)
        return 1
    for i in range(count):
        pub.publish(topic, f"msg-{i}", qos=qos).wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()

    ok = done.wait(10)
    sub.disconnect()
    sub.loop_stop()
    expected = [f"msg-{i}" for i in range(count)]
    if errors or not ok or received != expected:
        print(f"fail: errors={errors} received={received[:5]}... ({len(received)}/{count})", file=sys.stderr)
        return 1
    print(f"ok {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
