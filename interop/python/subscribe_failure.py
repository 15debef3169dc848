"""paho-mqtt's interoperability test `test_subscribe_failure` (paho.mqtt.testing,
interoperability/client_test.py): a SUBSCRIBE to a topic filter the server does
not allow gets return code 0x80. Against a broker whose ACL denies that filter.

As the original: client id "myclientid", one SUBSCRIBE at QoS 2 to the denied
filter, and the SUBACK's code must be 0x80. So that a broker refusing every
SUBSCRIBE cannot pass, a second SUBSCRIBE to ALLOWED must be granted QoS 2 and
a message published there must come back.

Usage: python3 subscribe_failure.py HOST PORT DENIED_FILTER ALLOWED_TOPIC
Prints "ok" and exits 0 on success; exits 1 with a reason otherwise.
"""
import sys
import threading

import paho.mqtt.client as mqtt

TIMEOUT = 10


def main() -> int:
    host, port, denied, allowed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    subacks = {}
    suback_arrived = threading.Condition()
    message = threading.Event()
    connected = threading.Event()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="myclientid",
                    protocol=mqtt.MQTTv311, clean_session=True)

    def on_connect(_c, _u, _f, reason_code, _p):
        if not reason_code.is_failure:
            connected.set()

    def on_subscribe(_c, _u, mid, reason_codes, _p):
        with suback_arrived:
            subacks[mid] = [rc.value for rc in reason_codes]
            suback_arrived.notify_all()

    def on_message(_c, _u, msg):
        if msg.topic == allowed and msg.payload == b"allowed":
            message.set()

    c.on_connect = on_connect
    c.on_subscribe = on_subscribe
    c.on_message = on_message
    c.connect(host, port)
    c.loop_start()
    try:
        if not connected.wait(TIMEOUT):
            print("no CONNACK accepting the client")
            return 1

        def subscribe(topic: str) -> list:
            _, mid = c.subscribe(topic, 2)
            with suback_arrived:
                if not suback_arrived.wait_for(lambda: mid in subacks, TIMEOUT):
                    raise TimeoutError(f"no SUBACK for {topic}")
                return subacks[mid]

        codes = subscribe(denied)
        if codes != [0x80]:
            print(f"SUBSCRIBE {denied}: return codes {codes}, expected [0x80]")
            return 1
        codes = subscribe(allowed)
        if codes != [2]:
            print(f"SUBSCRIBE {allowed}: return codes {codes}, expected [2]")
            return 1
        c.publish(allowed, b"allowed", qos=1)
        if not message.wait(TIMEOUT):
            print(f"the message published to {allowed} did not come back")
            return 1
        print("ok")
        return 0
    finally:
        c.disconnect()
        c.loop_stop()


if __name__ == "__main__":
    sys.exit(main())
