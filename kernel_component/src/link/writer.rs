//! One transport write per MQTT packet (UNFINISHED: being written).
