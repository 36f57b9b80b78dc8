//! MQTT 5 link (UNFINISHED: being written).
