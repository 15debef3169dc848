//! The MQTT 3.1.1 conformance harness (issue 4): a scenario engine driving a
//! raw MQTT client, and the scripted suite in `fixtures/scenarios/`.
