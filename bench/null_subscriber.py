"""The ingest baseline: a paho subscriber that does nothing but count (QoS 1).

Runs as its own process (so it does not share a GIL with the load generator) and
writes its running count to a file every 0.1 s. Usage:
    python bench/null_subscriber.py HOST PORT USER PASSWORD COUNT_FILE [TOPIC]
"""
import sys
import threading
import time

import paho.mqtt.client as mqtt


def main(argv):
    host, port, user, password, out = argv[:5]
    topic = argv[5] if len(argv) > 5 else "pers/v1/+/loc"
    count = [0]
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=user, clean_session=True, protocol=mqtt.MQTTv311)
    c.username_pw_set(user, password)
    ready = threading.Event()

    def on_connect(cl, u, f, rc, p):
        cl.subscribe(topic, qos=1)

    def on_subscribe(cl, u, mid, rcs, p):
        ready.set()

    def on_message(cl, u, msg):
        count[0] += 1

    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    c.connect(host, int(port), keepalive=30)
    c.loop_start()
    ready.wait(10)
    while True:
        with open(out + ".tmp", "w") as fh:
            fh.write(str(count[0]))
        import os
        os.replace(out + ".tmp", out)
        time.sleep(0.1)


if __name__ == "__main__":
    main(sys.argv[1:])
