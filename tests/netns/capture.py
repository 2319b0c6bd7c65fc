#!/usr/bin/env python3
# tests/netns/capture.py — what an outsider on the LAN records, and whether
# anything in it names a node or a network (issue 10, SPEC §19.3).
#
#   capture.py sniff PCAP           run inside the bridge namespace of
#                                   tests/netns/lib.sh: every frame that
#                                   enters the bridge through a host's port
#                                   (vh*) goes to PCAP, until SIGTERM
#   capture.py check PCAP NEEDLES   prints one JSON object: the counts of what
#                                   was captured and, for every needle, where
#                                   it was found (an empty list: nowhere)
#
# Sniffing: one AF_PACKET socket (ETH_P_ALL) in the bridge namespace sees the
# frames of every port. A frame crossing the bridge is seen twice, entering
# at its sender's port and leaving at each receiver's; only the entering copy
# (pkttype != PACKET_OUTGOING) is kept, so each frame on the wire is counted
# once. The bridge itself has no address: nothing starts there. Python's
# standard library only: no tcpdump, no new Debian package. The file is a
# plain pcap (linktype Ethernet), readable by tcpdump or Wireshark.
#
# NEEDLES is a JSON array of {"label": L, "text": S} (searched for without
# regard to ASCII case: base32 ids, names) or {"label": L, "hex": H} (raw
# bytes, searched for exactly). Each needle is searched in every frame whole,
# in every UDP payload and in every TCP stream reassembled from its segments
# in sequence order, so a value split across two segments is found too.
import base64
import json
import os
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_STATISTICS = 6
SNAPLEN = 262144  # veth may hand over GRO super-frames larger than the MTU


def sniff(path):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    s.settimeout(0.2)
    kept = 0
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, 1))
        f.flush()
        print("ready", flush=True)
        while not stop:
            try:
                data, addr = s.recvfrom(SNAPLEN)
            except socket.timeout:
                continue
            except InterruptedError:
                continue
            ifname, pkttype = addr[0], addr[2]
            if pkttype == PACKET_OUTGOING or not ifname.startswith("vh"):
                continue
            t = time.time()
            f.write(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(data), len(data)))
            f.write(data)
            kept += 1
        packets, drops = struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    os.rename(path + ".tmp", path)
    # The kernel's count covers both copies of each frame; drops are the point.
    print("stopped kept=%d kernel_drops=%d" % (kept, drops), flush=True)


def frames(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24 or struct.unpack("<I", data[:4])[0] != 0xA1B2C3D4:
        raise SystemExit("not a pcap written by capture.py: " + path)
    p = 24
    while p + 16 <= len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[p:p + 16])
        p += 16
        yield data[p:p + incl]
        p += incl


def parse(frame):
    """(src, dst, proto, sport, dport, seq, flags, payload) of an IPv4 UDP or
    TCP frame, or None."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 15) * 4
    total = struct.unpack(">H", ip[2:4])[0]
    if ip[0] >> 4 != 4 or ihl < 20 or total < ihl or total > len(ip):
        return None
    proto = ip[9]
    src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
    l4 = ip[ihl:total]
    if proto == 17 and len(l4) >= 8:
        sport, dport = struct.unpack(">HH", l4[:4])
        return src, dst, "udp", sport, dport, 0, 0, l4[8:]
    if proto == 6 and len(l4) >= 20:
        sport, dport, seq = struct.unpack(">HHI", l4[:8])
        off = (l4[12] >> 4) * 4
        if off < 20 or off > len(l4):
            return None
        return src, dst, "tcp", sport, dport, seq, l4[13], l4[off:]
    return None


def reassemble(segs):
    """The bytes of one direction of a TCP connection: segments placed by
    sequence number (relative to the first seen, modulo 2^32), overlaps and
    retransmissions counted once."""
    base = min(segs, key=lambda s: s[0])[0] if segs else 0
    out = bytearray()
    for seq, payload in sorted(((s - base) % (1 << 32), p) for s, p in segs):
        end = seq + len(payload)
        if end <= len(out):
            continue
        if seq > len(out):
            out += b"\0" * (seq - len(out))  # a segment we missed: keep offsets
        out += payload[len(out) - seq:]
    return bytes(out)


def check(path, needles_path):
    with open(needles_path) as f:
        needles = json.load(f)
    st = {"packets": 0, "bytes": 0, "mdns_packets": 0, "mdns_bytes": 0, "tcp_packets": 0,
          "tcp_payload_bytes": 0, "tcp_syns": 0, "other_packets": 0, "zmtp_greetings": 0,
          "zmtp_curve": 0, "zmtp_other_mechanism": 0, "curve_hello": 0, "curve_initiate": 0,
          "tcp_streams": 0, "mdns_by_src": {}}
    hay = []  # (where, bytes): frames, UDP payloads, TCP streams
    flows = {}
    for i, fr in enumerate(frames(path)):
        st["packets"] += 1
        st["bytes"] += len(fr)
        hay.append(("frame %d" % i, fr))
        pk = parse(fr)
        if pk is None:
            st["other_packets"] += 1
            continue
        src, dst, proto, sport, dport, seq, flags, payload = pk
        if proto == "udp":
            if 5353 in (sport, dport):
                st["mdns_packets"] += 1
                st["mdns_bytes"] += len(payload)
                # Per sender: packets, and blinded TXT items ("b=" with its
                # length byte, 118 = 2 + 116 base32 characters) in them.
                by = st["mdns_by_src"].setdefault(src, [0, 0])
                by[0] += 1
                by[1] += payload.count(b"\x76b=")
                hay.append(("mdns from %s frame %d" % (src, i), payload))
            else:
                st["other_packets"] += 1
            continue
        st["tcp_packets"] += 1
        st["tcp_payload_bytes"] += len(payload)
        if flags & 0x02 and not flags & 0x10:
            st["tcp_syns"] += 1
        key = (src, sport, dst, dport)
        if flags & 0x02:
            seq = (seq + 1) % (1 << 32)  # the SYN takes one sequence number
        if payload:
            flows.setdefault(key, []).append((seq, payload))
    for (src, sport, dst, dport), segs in flows.items():
        data = reassemble(segs)
        st["tcp_streams"] += 1
        hay.append(("tcp %s:%d->%s:%d" % (src, sport, dst, dport), data))
        # ZMTP 3 greeting (RFC 23): 0xff, 8 bytes, 0x7f, version 3.x, then
        # a 20-byte mechanism name padded with zeros.
        if len(data) >= 32 and data[0] == 0xFF and data[9] == 0x7F and data[10] == 3:
            st["zmtp_greetings"] += 1
            mech = data[12:32].rstrip(b"\0")
            if mech == b"CURVE":
                st["zmtp_curve"] += 1
            else:
                st["zmtp_other_mechanism"] += 1
            st["curve_hello"] += data.count(b"\x05HELLO")
            st["curve_initiate"] += data.count(b"\x08INITIATE")
    low = [(w, h.lower()) for w, h in hay]
    found = {}
    for n in needles:
        hits = []
        if "text" in n:
            pat = n["text"].encode().lower()
            pool = low
        else:
            pat = bytes.fromhex(n["hex"])
            pool = hay
        for where, h in pool:
            if pat and pat in h:
                hits.append(where)
        found[n["label"]] = hits
    st["found"] = found
    print(json.dumps(st))


def needle_forms(label, node_id):
    """Every form of a node id or network id (52-char base32 of a 32-byte
    key): the text, its first 8 characters, the raw key, its hex, and for
    node keys the X25519 form CURVE uses."""
    raw = base64.b32decode(node_id.upper() + "====")[:32]
    out = [{"label": label + " id", "text": node_id},
           {"label": label + " short id", "text": node_id[:8]},
           {"label": label + " raw", "hex": raw.hex()},
           {"label": label + " hex", "text": raw.hex()}]
    return raw, out


def ed_to_x(ed):
    # crypto_sign_ed25519_pk_to_curve25519: u = (1 + y) / (1 - y) mod p.
    p = 2**255 - 19
    y = int.from_bytes(ed, "little") & ((1 << 255) - 1)
    u = (1 + y) * pow((1 - y) % p, p - 2, p) % p
    return u.to_bytes(32, "little")


def needles(spec_path):
    """spec: {"nodes": {label: id}, "networks": {label: id}, "names": [..]}
    -> the NEEDLES array, on stdout."""
    with open(spec_path) as f:
        spec = json.load(f)
    out = []
    for label, nid in spec.get("nodes", {}).items():
        raw, forms = needle_forms(label, nid)
        out += forms
        x = ed_to_x(raw)
        out += [{"label": label + " x25519", "hex": x.hex()},
                {"label": label + " x25519 hex", "text": x.hex()}]
    for label, nid in spec.get("networks", {}).items():
        out += needle_forms(label, nid)[1]
    for name in spec.get("names", []):
        out.append({"label": "name " + name, "text": name})
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "sniff":
        sniff(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "needles":
        needles(sys.argv[2])
    else:
        raise SystemExit("usage: capture.py sniff PCAP | check PCAP NEEDLES | needles SPEC")
