// MQTT.js through a broker: one client subscribes, another publishes COUNT
// messages at QoS, and the run succeeds when every message arrived in order.
// Usage: node pubsub.js URL TOPIC QOS COUNT [CA_FILE]
// URL: mqtt://, mqtts://, ws:// or wss:// (MQTT over WebSocket, with a path).
// Prints "ok COUNT" and exits 0 on success; exits 1 with a reason otherwise.
'use strict';
const fs = require('fs');
const mqtt = require('mqtt');

const [url, topic, qosText, countText, caFile] = process.argv.slice(2);
const qos = Number(qosText);
const count = Number(countText);
const tls = caFile ? { ca: fs.readFileSync(caFile), rejectUnauthorized: true } : {};
const options = { protocolVersion: 4, clean: true, connectTimeout: 10000, reconnectPeriod: 0, ...tls };

let finished = false;
const fail = (why) => {
  // Once every message arrived the verdict is in; a reset while closing
  // changes nothing.
  if (finished) return;
  console.error(`fail: ${why}`);
  process.exit(1);
};
setTimeout(() => fail('timed out'), 20000).unref();

const sub = mqtt.connect(url, { ...options, clientId: `js-sub-${process.pid}` });
sub.on('error', (e) => fail(`subscriber: ${e.message}`));
let next = 0;
sub.on('message', (t, payload) => {
  if (t !== topic) return fail(`unexpected topic ${t}`);
  if (payload.toString() !== `msg-${next}`) return fail(`expected msg-${next}, got ${payload}`);
  next += 1;
  if (next === count) {
    finished = true;
    console.log(`ok ${count}`);
    sub.end(false, () => process.exit(0));
  }
});
sub.on('connect', () => {
  sub.subscribe(topic, { qos }, (err, granted) => {
    if (err) return fail(`subscribe: ${err.message}`);
    if (granted[0].qos !== qos) return fail(`granted QoS ${granted[0].qos}`);
    const pub = mqtt.connect(url, { ...options, clientId: `js-pub-${process.pid}` });
    pub.on('error', (e) => fail(`publisher: ${e.message}`));
    pub.on('connect', async () => {
      for (let i = 0; i < count; i += 1) {
        await pub.publishAsync(topic, `msg-${i}`, { qos });
      }
      pub.end();
    });
  });
});
