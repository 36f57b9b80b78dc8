//! MQTT 3.1.1 link (UNFINISHED: being written).
