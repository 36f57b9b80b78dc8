#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into seeds/<target>/ (committed; run again after
changing this file). The seeds are the repository's own test vectors: the ABI golden bytes
(kernel_component/abi/tests/golden.rs), the MQTT packets the link tests build by hand
(link/v311.rs, link/v5.rs), the manifests of manifest/{device.toml,examples,tests/good,tests/bad},
the OTA job and registration JSON of ota/job/tests.rs and registration/*/tests.rs, the HTTP
answers of registration/https/tests.rs and ota/download/tests.rs, and the spec's samples
(/work/shared/spec/aliyun-protocol.md §2, §3), each framed the way its target reads its input
(see the comment at the top of each fuzz_targets/*.rs)."""

import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SEEDS = os.path.join(HERE, "seeds")
shutil.rmtree(SEEDS, ignore_errors=True)


def put(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pstr(s):
    if isinstance(s, str):
        s = s.encode()
    return varint(len(s)) + s


# ---- syscall: ABI frames (postcard) as steps ---------------------------------------------

def hello(major=2, minor=2):
    return bytes([0]) + varint(major) + varint(minor)


def publish(topic, payload, qos, token):
    return bytes([1]) + pstr(topic) + pstr(payload) + bytes([qos]) + varint(token)


def subscribe(flt, qos, token):
    return bytes([2]) + pstr(flt) + bytes([qos]) + varint(token)


def unsubscribe(flt):
    return bytes([3]) + pstr(flt)


STATUS = bytes([4])


def wait(ms):
    return bytes([5]) + varint(ms)


def call(app, frame):
    """Step 0 (one length byte) or 6 (two) with a raw frame from `app`."""
    if len(frame) < 256:
        return bytes([app << 4 | 0, len(frame)]) + frame
    return bytes([app << 4 | 6, len(frame) & 0xFF, len(frame) >> 8]) + frame


CONNECTED = bytes([0x08])
LINK_DOWN = bytes([0x09])
WRITTEN = bytes([0x0A])
BUSY = bytes([0x1A])


def ack(pick, granted=True):
    return bytes([0x0B if granted else 0x1B, pick])


def incoming(topic_index, length, qos1, payload_byte=0x41):
    arg = 8 if qos1 else 0
    return bytes([arg << 4 | 0x0C, topic_index, length]) + bytes([payload_byte]) * length


def exited(app):
    return bytes([app << 4 | 0x0D])


READY = bytes([0x0E, 5])

greet = b"".join(call(a, hello()) for a in range(3))
# The ABI golden frames (abi/tests/golden.rs), each from app 0 after its Hello.
golden = [
    hello(2, 0),
    bytes([0, 0xAC, 0x02, 1]),
    bytes([1, 4]) + b"/a/b" + bytes([2]) + b"hi" + bytes([1, 7]),
    bytes([1, 1, ord("t"), 0, 0, 0x80, 0x01]),
    bytes([2, 4]) + b"/x/#" + bytes([1, 3]),
    bytes([3, 2]) + b"/x",
    STATUS,
    bytes([5, 0xA0, 0x9C, 0x01]),
    bytes([6]),
]
for i, frame in enumerate(golden):
    put("syscall", f"golden-{i}", call(0, hello()) + call(0, frame))
put("syscall", "greet-all", greet)
put(
    "syscall",
    "subscribe-connect-suback-message",
    greet
    + call(0, subscribe("/pk/dn/user/get", 1, 1))
    + call(2, subscribe("/pk/dn/user/+", 0, 2))
    + call(1, subscribe("/pk/dn/user/cmd/#", 1, 3))
    + CONNECTED
    + WRITTEN + WRITTEN + WRITTEN
    + ack(0) + ack(0) + ack(0, False)
    + incoming(2, 4, True) + incoming(4, 8, False) + incoming(2, 30, True)
    + call(0, wait(0)) + call(2, wait(0)) + call(1, wait(0)) + call(0, wait(0)),
)
put(
    "syscall",
    "publish-qos1-reconnect",
    greet
    + call(0, publish("/pk/dn/user/update", b"LUATOS_CESHI", 1, 9))
    + call(1, publish("/pk/dn/user/update/error", b"e", 1, 10))
    + call(2, publish("/pk/dn/user/other", b"w" * 40, 1, 11))
    + call(0, publish("/pk/dn/user/update", b"x" * 33, 1, 12))
    + CONNECTED + WRITTEN + WRITTEN + BUSY + LINK_DOWN
    + CONNECTED + WRITTEN + WRITTEN + WRITTEN + ack(1) + ack(0)
    + call(0, STATUS) + call(0, wait(0)) + call(1, wait(0)),
)
put(
    "syscall",
    "unsubscribe-while-connected-exit",
    greet
    + call(0, subscribe("/pk/dn/user/get", 0, 1))
    + call(2, subscribe("/pk/dn/user/get", 1, 2))
    + CONNECTED + WRITTEN + ack(0)
    + call(0, unsubscribe("/pk/dn/user/get"))
    + exited(2) + WRITTEN + ack(0)
    + call(2, unsubscribe("/pk/dn/user/get")),
)
put(
    "syscall",
    "wait-and-expire",
    greet + call(1, subscribe("/pk/dn/user/ceshi", 1, 4)) + CONNECTED + WRITTEN + ack(0)
    + call(1, wait(500)) + incoming(3, 5, True) + READY
    + call(1, wait(100)) + READY + READY,
)
put(
    "syscall",
    "out-of-range-and-garbage",
    call(3, hello()) + call(0, b"\x00\x03\x00") + call(0, hello()) + call(0, b"\x09")
    + call(0, b"\x01\x05/a") + call(0, publish("/pk/dn/user/update", b"p" * 300, 1, 1)),
)

# ---- MQTT 3.1.1 ----------------------------------------------------------------------------

def remaining(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def packet(first, body):
    return bytes([first]) + remaining(len(body)) + body


def mstr(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack(">H", len(s)) + s


def pub311(qos, topic, payload, pid=None, dup=False, retain=False):
    first = 0x30 | qos << 1 | (8 if dup else 0) | (1 if retain else 0)
    body = mstr(topic) + (struct.pack(">H", pid) if pid is not None else b"") + payload
    return packet(first, body)


CONNACK311 = bytes([0x20, 2, 0, 0])
v311 = {
    "publish-qos0": pub311(0, "/pk/dn/user/ceshi", b"hello"),
    "publish-qos1": pub311(1, "/pk/dn/user/get", b"LUATOS_CESHI", 7),
    "publish-qos2-pubrel": pub311(2, "/pk/dn/user/get", b"q2", 8) + packet(0x62, struct.pack(">H", 8)),
    "acks": packet(0x90, struct.pack(">H", 1) + b"\x01")
    + packet(0x90, struct.pack(">H", 2) + b"\x80")
    + packet(0x40, struct.pack(">H", 3))
    + packet(0xB0, struct.pack(">H", 4))
    + bytes([0xD0, 0]),
    "unknown-pids": packet(0x40, struct.pack(">H", 99)) + packet(0x90, struct.pack(">H", 3) + b"\x00"),
    "second-connack": CONNACK311,
    "zero-pid-bad-utf8": pub311(1, b"\xff\xfe", b"x", 0),
    "large-publish": pub311(1, "/pk/dn/user/get", b"z" * 9000, 5) + bytes([0xD0, 0]),
    "many-small": pub311(0, "/a", b"") * 20,
}
for name, body in v311.items():
    put("mqtt_v311", name, bytes([0x02]) + body)
    put("mqtt_v311", name + "-bytewise", bytes([0x06 | 0 << 3]) + body)
put("mqtt_v311", "connack-in-input", bytes([0x03]) + CONNACK311 + v311["acks"])
put("mqtt_v311", "connack-refused", bytes([0x01]) + bytes([0x20, 2, 0, 5]))
put("mqtt_v311", "connack-truncated", bytes([0x01, 0x20, 0x00]))

# ---- MQTT 5 --------------------------------------------------------------------------------

def props(*items):
    body = b"".join(items)
    return remaining(len(body)) + body


def pub5(qos, topic, payload, pid=None, properties=b"\x00"):
    body = mstr(topic) + (struct.pack(">H", pid) if pid is not None else b"") + properties + payload
    return packet(0x30 | qos << 1, body)


def user_prop(k, v):
    return b"\x26" + mstr(k) + mstr(v)


CONNACK5 = bytes([0x20, 3, 0, 0, 0])
v5 = {
    "publish-qos0": pub5(0, "/pk/dn/user/ceshi", b"hello"),
    "publish-qos1": pub5(1, "/pk/dn/user/get", b"LUATOS_CESHI", 7),
    "publish-props": pub5(
        1,
        "/pk/dn/user/get",
        b"{}",
        9,
        props(b"\x01\x01", b"\x02\x00\x00\x00\x3c", b"\x03" + mstr("application/json"), b"\x23\x00\x02"),
    ),
    "publish-5-user-props": pub5(
        0, "/pk/dn/user/get", b"p", None, props(*(user_prop("k%d" % i, "v") for i in range(5)))
    ),
    "publish-topic-alias-empty-topic": pub5(0, "", b"p", None, props(b"\x23\x00\x01")),
    "acks": packet(0x90, struct.pack(">H", 1) + b"\x00\x01")
    + packet(0x90, struct.pack(">H", 2) + b"\x00\x87")
    + packet(0x40, struct.pack(">H", 3) + b"\x87\x00")
    + packet(0x40, struct.pack(">H", 3))
    + packet(0xB0, struct.pack(">H", 4) + b"\x00\x00")
    + bytes([0xD0, 0]),
    "suback-reason-string": packet(0x90, struct.pack(">H", 1) + props(b"\x1f" + mstr("no")) + b"\x80"),
    "disconnect": bytes([0xE0, 2, 0x8E, 0]),
    "auth-packet": bytes([0xF0, 0]),
    "large-publish": pub5(1, "/pk/dn/user/get", b"z" * 9000, 5) + bytes([0xD0, 0]),
}
for name, body in v5.items():
    put("mqtt_v5", name, bytes([0x02]) + body)
    put("mqtt_v5", name + "-more-publishes", bytes([0x06 | 1 << 3]) + body)
for name, connack in {
    "receive-maximum-1": packet(0x20, b"\x00\x00" + props(b"\x21\x00\x01")),
    "no-wildcards": packet(0x20, b"\x00\x00" + props(b"\x28\x00")),
    "server-keepalive-topic-alias": packet(0x20, b"\x00\x00" + props(b"\x13\x00\x1e", b"\x22\x00\x04")),
    "max-packet-size-small": packet(0x20, b"\x00\x00" + props(b"\x27\x00\x00\x00\x20")),
    "refused-0x86": bytes([0x20, 3, 0, 0x86, 0]),
}.items():
    put("mqtt_v5", "connack-" + name, bytes([0x07]) + connack + v5["acks"] + v5["publish-qos1"])

# ---- manifest ------------------------------------------------------------------------------

manifests = [os.path.join(ROOT, "manifest", "device.toml")]
for sub in ["examples", "tests/good", "tests/bad"]:
    d = os.path.join(ROOT, "manifest", sub)
    manifests += [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".toml")]
for path in manifests:
    rel = os.path.relpath(path, os.path.join(ROOT, "manifest")).replace("/", "-")
    with open(path, "rb") as f:
        put("manifest", rel, f.read())

# ---- OTA job JSON --------------------------------------------------------------------------

FULL = (
    '"size":432945,"version":"2.0.0","isDiff":0,"url":"https://ota.example/fw.bin?Expires=1&Signature=x",'
    '"md5":"93230c3bde425a9d7984a594ac55ea1e","digestsign":"abc","sign":"93230c3bde425a9d7984a594ac55ea1e",'
    '"signMethod":"MD5","module":"default","extData":{"key1":"value1"}'
)
SHA = "a" * 64
jobs = {
    "push-md5": '{"code":"1000","data":{%s},"id":1626969597470,"message":"success"}' % FULL,
    "push-sha256": '{"code":"1000","data":{%s},"id":1,"message":"success"}'
    % FULL.replace('"signMethod":"MD5"', '"signMethod":"Sha256"').replace(
        '"sign":"93230c3bde425a9d7984a594ac55ea1e"', '"sign":"%s"' % SHA
    ),
    "push-diff": '{"code":"1000","data":{%s}}' % FULL.replace('"isDiff":0', '"isDiff":"1"'),
    "push-module": '{"code":"1000","data":{%s}}' % FULL.replace('"module":"default"', '"module":"mcu"'),
    "get-reply": '{"id":"7","code":200,"data":{"size":"1024","version":"1.1","url":"http://h/f","md5":"93230C3BDE425A9D7984A594AC55EA1E"},"message":"success"}',
    "empty-data": '{"id":"1","code":200,"data":{},"message":"success"}',
    "null-data": '{"data":null}',
    "array-data": '{"data":[1]}',
}
for name, text in jobs.items():
    put("ota_job", name, b"\x00" + text.encode())
put("ota_job", "push-module-mcu", b"\x01" + jobs["push-module"].encode())
put("ota_job", "small-slot", b"\x04" + jobs["push-md5"].encode())

# ---- registration JSON (MQTT) --------------------------------------------------------------

regs = [
    (0, '{"productKey":"pk","deviceName":"dn","deviceSecret":"S3cr3t","extra":{"a":[1,2]}}'),
    (0, '{"deviceSecret":"x1"}'),
    (0, '{"deviceSecret":""}'),
    (0, '{"productKey":"pk"}'),
    (0, '{"deviceName":"other","deviceSecret":"s"}'),
    (1, '{"clientId":"pk.abc","productKey":"pk","deviceName":"dn","deviceToken":"T0k"}'),
    (1, '{"clientId":"a|b","deviceToken":"T0k"}'),
    (2, '{"deviceSecret":"x1"}'),
]
for i, (mode, text) in enumerate(regs):
    put("registration_json", f"answer-{i}", bytes([mode]) + text.encode())

# ---- registration over HTTPS ---------------------------------------------------------------

PK, DN = "a1NrfDemo01", "nrf9160-dk-01"
success = '{"code":200,"data":{"productKey":"%s","deviceName":"%s","deviceSecret":"0123456789abcdef"},"message":"success"}' % (PK, DN)


def http_200(body):
    return (
        "HTTP/1.1 200 OK\r\ncontent-length: %d\r\ncontent-type: application/json\r\n"
        "date: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n%s" % (len(body), body)
    ).encode()


def chunked(head, body, size):
    out = ("HTTP/1.1 %s\r\nTransfer-Encoding: chunked\r\n\r\n" % head).encode()
    body = body.encode() if isinstance(body, str) else body
    for i in range(0, len(body), size):
        piece = body[i : i + size]
        ext = ";name=value" if i == size else ""
        out += ("%x%s\r\n" % (len(piece), ext)).encode() + piece + b"\r\n"
    return out + b"0\r\nX-Trailer: yes\r\n\r\n"


https = {
    "success": http_200(success),
    "success-chunked": chunked("200 OK", success, 16),
    "success-to-close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + success.encode(),
    "code-string": http_200('{"code":"200","data":{"deviceSecret":"s3"}}'),
    "already-activated": http_200('{"code":6289,"data":{},"message":"device is already activated"}'),
    "500-html": b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 13\r\n\r\n<html></html>",
    "401": b"HTTP/1.1 401 Unauthorized\r\n\r\n",
    "two-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
    "bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "huge-length": b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "truncated-head": b"HTTP/1.1 200 OK\r\nContent-Le",
}
for name, reply in https.items():
    put("registration_https", name, b"\x00" + reply)
put("registration_https", "success-bytewise", bytes([0x00 | 0 << 2]) + https["success-chunked"])
put("registration_https", "success-small-buf", bytes([0x03 | 3 << 2]) + https["success"])

# ---- OTA download --------------------------------------------------------------------------

FILE = bytes(range(256)) * 2  # 512 bytes


def oss_head(status, fields):
    return (
        "HTTP/1.1 %s\r\nServer: AliyunOSS\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
        "Content-Type: application/octet-stream\r\n%sConnection: close\r\nAccept-Ranges: bytes\r\n"
        'ETag: "5B3C1A2E053D763E1B002CC607C5A0FE"\r\nx-oss-request-id: 5C6A5F3A0A1B2C3D4E5F6A7B\r\n\r\n'
        % (status, fields)
    ).encode()


def partial(frm):
    total = len(FILE)
    return oss_head(
        "206 Partial Content",
        "Content-Length: %d\r\nContent-Range: bytes %d-%d/%d\r\n" % (total - frm, frm, total - 1, total),
    ) + FILE[frm:]


def whole():
    return oss_head("200 OK", "Content-Length: %d\r\n" % len(FILE)) + FILE


def fetch_seed(mode, frm, total, reply):
    return bytes([mode]) + struct.pack(">HH", frm, total) + reply


total = len(FILE)
downloads = {
    "206-from-0": (0, partial(0)),
    "206-from-100": (100, partial(100)),
    "200-whole-to-resume": (100, whole()),
    "200-chunked": (0, chunked("200 OK", FILE, 100)),
    "206-bad-range": (100, partial(50)),
    "206-cut": (0, partial(0)[:400]),
    "416": (100, b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n"),
    "403": (0, b"HTTP/1.1 403 Forbidden\r\n\r\n"),
    "200-too-long-to-close": (0, b"HTTP/1.1 200 OK\r\n\r\n" + FILE + b"extra"),
}
for name, (frm, reply) in downloads.items():
    put("download_http", "fetch-" + name, fetch_seed(0x00 | 6 << 2, frm, total, reply))
put("download_http", "fetch-bytewise-small-buf", fetch_seed(0x00 | 0 << 2 | 3 << 5, 0, total, partial(0)))
put("download_http", "fetch-sink-fails", fetch_seed(0x02 | 1 << 2, 0, total, chunked("200 OK", FILE, 64)))


def answers(*replies):
    return b"".join(struct.pack(">H", len(r)) + r for r in replies)


cut = len(partial(0)) - total + 150  # the head and 150 bytes of the body
put(
    "download_http",
    "job-cut-then-resume",
    bytes([0x01 | 6 << 2]) + struct.pack(">HH", total, 0) + answers(partial(0)[:cut], partial(150)),
)
put("download_http", "job-whole", bytes([0x01 | 6 << 2]) + struct.pack(">HH", total, 0) + answers(whole()))
put(
    "download_http",
    "job-416-then-500",
    bytes([0x01 | 6 << 2]) + struct.pack(">HH", total, 0)
    + answers(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", partial(0)[:350], b"HTTP/1.1 416 No\r\n\r\n", whole()),
)

# ---- patcher -------------------------------------------------------------------------------
# A body behind a valid header (mode bit 6): a few literal and copy bytes of heatshrink input.
put("patcher", "header-and-body", bytes([0x40 | 7, 4]) + bytes(range(64)))
put("patcher", "whole-patch-garbage", bytes([0x00 | 3]) + b"ALDP" + bytes(60))

# ---- factory_record ------------------------------------------------------------------------
# The layout of store/factory.rs (and its tests): magic, layout 1, length, record, CRC-32.
import zlib


def factory(kind, pk, dn, client_id, secret):
    rec = bytes([1, kind, len(pk)]) + pk + bytes([len(dn)]) + dn
    rec += bytes([len(client_id)]) + client_id + bytes([len(secret)]) + secret
    head = b"ALFR" + bytes([1, 0]) + struct.pack("<H", len(rec)) + rec
    return head + struct.pack("<I", zlib.crc32(head))


device_secret = factory(1, b"a1ExamplePk", b"nrf9160-0004", b"", b"0123456789abcdef")
put("factory_record", "device-secret-word4", bytes([1]) + device_secret)
put("factory_record", "device-secret-word1", bytes([0]) + device_secret)
put("factory_record", "token-word32", bytes([2]) + factory(2, b"a1ExamplePk", b"nrf9160-0004", b"cid", b"tok"))
put("factory_record", "other-device", bytes([1]) + factory(1, b"a1ExamplePk", b"other", b"", b"s"))
put("factory_record", "erased", bytes([1]) + b"\xff" * 16)

count = sum(len(files) for _, _, files in os.walk(SEEDS))
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(SEEDS) for f in files)
print(f"{count} seeds, {size} bytes, in {SEEDS}")
